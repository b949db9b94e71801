"""The IMAP listeners' protocol factory, built from the running a3mail's Runtime.

The same factory serves ``imap`` (STARTTLS) and ``imaps`` (implicit TLS; the service wraps
it, ``imaps`` is in ``a3mail.listeners.IMPLICIT_TLS``).  It also caps the connections one
client IP address may hold.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol

from a3mail.auth.guard import LoginGuard
from a3mail.config import Config
from a3mail.imap.framing import Limits
from a3mail.imap.server import IMAPServer
from a3mail.imap.snapshots import SnapshotCache
from a3mail.login_factory import LoginServerFactory
from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics
from a3mail.runtime import Runtime
from a3mail.store import Store
from a3mail.tls import ServerTLS

log = get_logger(__name__)


@attrs.frozen
class ImapSettings:
    """What an IMAP session needs from the configuration (sizes in octets, seconds)."""

    max_line: int = 65536
    max_literal: int = 65536
    max_append: int = 50 * 1024 * 1024
    idle_timeout: float = 1800.0
    login_timeout: float = 60.0
    max_connections_per_ip: int = 20
    allow_plaintext_loopback: bool = False

    @classmethod
    def from_config(cls, config: Config) -> ImapSettings:
        """The settings of a loaded configuration."""
        imap = config.imap
        return cls(
            max_line=imap.max_line,
            max_literal=imap.max_literal,
            max_append=config.limits.max_message_size,
            idle_timeout=imap.idle_timeout,
            login_timeout=imap.login_timeout,
            max_connections_per_ip=imap.max_connections_per_ip,
            allow_plaintext_loopback=config.auth.allow_plaintext_loopback,
        )

    def limits(self) -> Limits:
        """The framing limits."""
        return Limits(
            max_line=self.max_line,
            max_literal=self.max_literal,
            max_append=self.max_append,
            max_command=max(1024 * 1024, self.max_literal * 4),
        )


class _Refuse(Protocol):
    """Says BYE to a client over its connection limit."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"* BYE Too many connections from your address\r\n")
        self.transport.loseConnection()


class IMAPFactory(LoginServerFactory[ImapSettings]):
    """Builds :class:`IMAPServer` sessions sharing the store, checker, guard and TLS."""

    protocol = IMAPServer

    def __init__(
        self,
        store: Store,
        checker: ICredentialsChecker,
        guard: LoginGuard,
        settings: ImapSettings,
        tls: ServerTLS | None,
        clock: IReactorTime,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(store, checker, guard, settings, tls, clock, metrics)
        self.snapshots = SnapshotCache()
        self.per_ip: dict[str, int] = {}
        self._ip_of: dict[int, str] = {}

    def buildProtocol(self, addr: Any) -> Protocol:
        """A new session, or a refusal past ``max_connections_per_ip``."""
        host = getattr(addr, "host", None)
        if isinstance(host, str):
            if self.per_ip.get(host, 0) >= self.settings.max_connections_per_ip:
                log.info("imap: too many connections from {ip}", ip=host)
                refuse = _Refuse()
                refuse.factory = self
                return refuse
            self.per_ip[host] = self.per_ip.get(host, 0) + 1
        session = IMAPServer()
        session.factory = self
        if isinstance(host, str):
            self._ip_of[id(session)] = host
        return session

    def released(self, session: IMAPServer) -> None:
        """A session ended (called from its connectionLost)."""
        host = self._ip_of.pop(id(session), None)
        if host is not None:
            left = self.per_ip.get(host, 1) - 1
            if left > 0:
                self.per_ip[host] = left
            else:
                self.per_ip.pop(host, None)


def build_factory(runtime: Runtime) -> IMAPFactory:
    """The factory for the ``imap`` and ``imaps`` listeners."""
    return IMAPFactory.from_runtime(runtime, ImapSettings.from_config(runtime.config))
