"""Which protocol serves each configured listener.

Each protocol front registers a builder here: given the :class:`~a3mail.runtime.Runtime`
it returns the protocol factory for that listener name.  Builders are named as
``"module:function"`` and imported only when the listener is configured, so that importing
a3mail never drags in every protocol.  Listeners named in ``IMPLICIT_TLS`` are wrapped in
TLS with the configured certificate.  A listener name needs both a default endpoint in
``a3mail.config.LISTENER_DEFAULTS`` and a builder here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from twisted.internet.interfaces import IProtocolFactory

from a3mail.runtime import Runtime

FactoryBuilder = Callable[[Runtime], IProtocolFactory]


def lazy(target: str) -> FactoryBuilder:
    """A builder that imports ``module:function`` when first called."""
    module_name, _, function_name = target.partition(":")

    def build(runtime: Runtime) -> IProtocolFactory:
        builder: FactoryBuilder = getattr(importlib.import_module(module_name), function_name)
        return builder(runtime)

    build.__qualname__ = f"lazy({target})"
    return build


# name -> builder of the protocol factory for that listener.
PROTOCOL_FACTORIES: dict[str, FactoryBuilder] = {}

# Listeners that speak TLS from the first byte (the endpoint itself is plain tcp:).
IMPLICIT_TLS: frozenset[str] = frozenset({"submissions", "imaps", "pop3s"})
