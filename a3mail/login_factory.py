"""The protocol factory shape the mail-access listeners (IMAP, POP3) share: sessions that
log in against the store share the store, the password checker, the login guard, the
protocol's settings, the TLS context, a clock and the metrics."""

from __future__ import annotations

from typing import Generic, Self, TypeVar

from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory

from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.guard import LoginGuard
from a3mail.ops.metrics import Metrics, detached
from a3mail.runtime import Runtime
from a3mail.store import Store
from a3mail.tls import ServerTLS

Settings = TypeVar("Settings")


class LoginServerFactory(ServerFactory, Generic[Settings]):
    """Holds what every session of one listener shares; *settings* are the protocol's."""

    noisy = False

    def __init__(
        self,
        store: Store,
        checker: ICredentialsChecker,
        guard: LoginGuard,
        settings: Settings,
        tls: ServerTLS | None,
        clock: IReactorTime,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics if metrics is not None else detached()
        self.checker = checker
        self.guard = guard
        self.settings = settings
        self.tls = tls
        self.clock = clock

    @classmethod
    def from_runtime(cls, runtime: Runtime, settings: Settings) -> Self:
        """The factory of a running a3mail: its store, reactor, TLS and metrics, checking
        passwords against the store and delaying failed logins by ``auth.failure_delay``."""
        return cls(
            store=runtime.store,
            checker=AccountPasswordChecker(runtime.store, runtime.reactor),
            guard=LoginGuard(
                runtime.store,
                runtime.reactor,
                runtime.config.auth.failure_delay,
                metrics=runtime.metrics,
            ),
            settings=settings,
            tls=runtime.tls,
            clock=runtime.reactor,
            metrics=runtime.metrics,
        )
