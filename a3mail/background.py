"""Background services: the parts of a3mail that run beside the listeners, not behind one.

Each is registered here by name with a builder that, given the
:class:`~a3mail.runtime.Runtime`, returns a Twisted service.  ``A3MailService`` builds and
starts them once the store is open (before the listeners), and stops them after the
listeners and before the store closes.  Builders are ``"module:function"`` names imported
only when a3mail starts, like the protocol factories in ``a3mail.listeners``.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import IService

from a3mail.listeners import lazy
from a3mail.runtime import Runtime

ServiceBuilder = Callable[[Runtime], IService]


def lazy_service(target: str) -> ServiceBuilder:
    """A builder that imports ``module:function`` when a3mail starts (see listeners.lazy)."""
    builder: ServiceBuilder = lazy(target)
    return builder


# name -> builder of the service.
BACKGROUND_SERVICES: dict[str, ServiceBuilder] = {
    "webhooks": lazy_service("a3mail.ops.webhooks:build_service"),
    "outbound": lazy_service("a3mail.outbound.service:build_service"),
    "tempmail-reaper": lazy_service("a3mail.tempmail.reaper:build_service"),
    "security": lazy_service("a3mail.ops.security:build_service"),
}
