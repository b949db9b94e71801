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
from typing import Any

from twisted.internet.interfaces import IProtocolFactory

from a3mail.runtime import Runtime

FactoryBuilder = Callable[[Runtime], IProtocolFactory]


def lazy(target: str) -> Callable[[Runtime], Any]:
    """A builder that imports ``module:function`` when first called, then calls it with the
    runtime (used for protocol factories here and for background services)."""
    module_name, _, function_name = target.partition(":")

    def build(runtime: Runtime) -> Any:
        return getattr(importlib.import_module(module_name), function_name)(runtime)

    build.__qualname__ = f"lazy({target})"
    return build


# name -> builder of the protocol factory for that listener.
PROTOCOL_FACTORIES: dict[str, FactoryBuilder] = {
    "pop3": lazy("a3mail.pop3.factory:build_factory"),
    "pop3s": lazy("a3mail.pop3.factory:build_factory"),
    "imap": lazy("a3mail.imap.factory:build_factory"),
    "imaps": lazy("a3mail.imap.factory:build_factory"),
    "smtp": lazy("a3mail.smtp.factory:build_mx"),
    "submission": lazy("a3mail.smtp.factory:build_submission"),
    "submissions": lazy("a3mail.smtp.factory:build_submissions"),
    "http": lazy("a3mail.http.factory:build_http"),
    "manhole": lazy("a3mail.manhole:build_manhole"),
    "freemail": lazy("a3mail.http.freemail.site:build_freemail"),
}

# Listeners that speak TLS from the first byte (the endpoint itself is plain tcp:).
IMPLICIT_TLS: frozenset[str] = frozenset({"submissions", "imaps", "pop3s"})
