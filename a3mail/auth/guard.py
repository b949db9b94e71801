"""Login outcomes: every success and failure recorded in the audit log, failures delayed.

Protocol fronts (SMTP AUTH, IMAP, POP3, HTTP logins) call :meth:`LoginGuard.failed` or
:meth:`LoginGuard.succeeded`; the security controls count the audit records.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from a3mail.logs import get_logger
from a3mail.store import Store

log = get_logger(__name__)

AUTH_SUCCESS = "auth.success"
AUTH_FAILURE = "auth.failure"


class LoginGuard:
    """Records login outcomes and delays failures by ``auth.failure_delay`` seconds."""

    def __init__(self, store: Store, clock: IReactorTime, failure_delay: float) -> None:
        self.store = store
        self.clock = clock
        self.failure_delay = failure_delay

    async def failed(self, protocol: str, username: str, ip: str | None, reason: str = "") -> None:
        """Record a failed login, then wait out the delay before the caller answers."""
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
        if self.failure_delay > 0:
            wait: Deferred[Any] = deferLater(self.clock, self.failure_delay, lambda: None)
            await wait

    async def succeeded(self, protocol: str, username: str, ip: str | None) -> None:
        """Record a successful login."""
        try:
            await self.store.audit.record(
                AUTH_SUCCESS, actor=username[:320], ip=ip, details={"protocol": protocol}
            )
        except Exception:
            log.failure("recording a {protocol} login", protocol=protocol)
