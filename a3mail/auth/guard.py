"""Login outcomes: every success and failure recorded in the audit log, failures delayed.

Protocol fronts (SMTP AUTH, IMAP, POP3, HTTP logins) call :meth:`LoginGuard.failed` or
:meth:`LoginGuard.succeeded`.  After each failure the store's automatic block rule counts
the ``auth.failure`` records from that address (every protocol, every process) and blocks
it when there are too many (see ``a3mail.store.blocklist`` and docs/security.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics, detached
from a3mail.store import Store

log = get_logger(__name__)

AUTH_SUCCESS = "auth.success"
AUTH_FAILURE = "auth.failure"


class LoginGuard:
    """Records login outcomes and delays failures by ``auth.failure_delay`` seconds."""

    def __init__(
        self,
        store: Store,
        clock: IReactorTime,
        failure_delay: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.failure_delay = failure_delay
        self.metrics = metrics if metrics is not None else detached()

    async def failed(self, protocol: str, username: str, ip: str | None, reason: str = "") -> None:
        """Record a failed login, then wait out the delay before the caller answers."""
        self.metrics.auth(protocol, False)
        log.info(
            "{protocol} login failed for {username!r} from {ip}",
            protocol=protocol,
            username=username[:100],
            ip=ip,
        )
        try:
            await self.store.audit.record(
                AUTH_FAILURE,
                severity="warning",
                actor=username[:320] or None,
                ip=ip,
                success=False,
                details={"protocol": protocol, "reason": reason},
            )
        except Exception:
            log.failure("recording a failed {protocol} login", protocol=protocol)
        await self._auto_block(ip)
        if self.failure_delay > 0:
            wait: Deferred[Any] = deferLater(self.clock, self.failure_delay, lambda: None)
            await wait

    async def _auto_block(self, ip: str | None) -> None:
        """Apply the automatic block rule (``[security]``) to the failing address."""
        blocklist = getattr(self.store, "blocklist", None)
        if ip is None or blocklist is None:
            return
        try:
            block = await blocklist.note_failure(ip)
        except Exception:
            log.failure("applying the automatic block rule to {ip}", ip=ip)
            return
        if block is not None:
            log.warn(
                "blocked {network} until {expires} after repeated failed logins",
                network=block.network,
                expires=block.expires_at,
            )

    async def succeeded(self, protocol: str, username: str, ip: str | None) -> None:
        """Record a successful login."""
        self.metrics.auth(protocol, True)
        try:
            await self.store.audit.record(
                AUTH_SUCCESS, actor=username[:320], ip=ip, details={"protocol": protocol}
            )
        except Exception:
            log.failure("recording a {protocol} login", protocol=protocol)
