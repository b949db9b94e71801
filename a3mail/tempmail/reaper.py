"""The temp-mail reaper: removes expired temp addresses with their mail.

Every :data:`INTERVAL` seconds it asks the store for temp addresses (accounts created
through the temp-mail API) whose ``expires_at`` has passed and deletes each one with
``store.accounts.delete`` (index rows first, then the files), in batches.  Ordinary
accounts, even ones with an ``expires_at``, are never selected; nor are permanent temp
addresses (``expiryTime`` 0, which expire in 100 years).  Each pass that removes anything
logs the counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from a3mail.logs import get_logger
from a3mail.store.records import NotFound

log = get_logger(__name__)

INTERVAL = 60.0
BATCH = 100
MAX_BATCHES = 50  # per pass: a huge backlog is worked off over several passes


@attrs.frozen
class ReapReport:
    """What one pass removed."""

    addresses: int
    messages: int
    bytes: int


class TempmailReaper(Service):
    """Periodically deletes expired temp addresses (see the module docstring)."""

    name = "tempmail-reaper"

    def __init__(self, store: Any, clock: Any, interval: float = INTERVAL) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self._loop: LoopingCall | None = None
        self._running: Deferred[Any] | None = None

    def startService(self) -> None:
        """Start the periodic passes (the first one at once)."""
        super().startService()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)
        log.info(
            "tempmail reaper: removing expired temp addresses every {interval:g} s",
            interval=self.interval,
        )

    def stopService(self) -> Deferred[Any] | None:
        """Stop the passes; wait for one in progress."""
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return self._running

    def _tick(self) -> None:
        if self._running is not None:
            return  # the previous pass is still going
        running = self.reap()
        self._running = running

        def done(result: Any) -> None:
            self._running = None

        running.addErrback(lambda f: log.failure("tempmail reaper pass failed", f))
        running.addBoth(done)

    def reap(self) -> Deferred[ReapReport]:
        """One pass: delete every temp address expired by now."""
        return Deferred.fromCoroutine(self._reap())

    async def _reap(self) -> ReapReport:
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        addresses = messages = size = 0
        for _ in range(MAX_BATCHES):
            expired = await self.store.tempmail.expired(now, BATCH)
            if not expired:
                break
            for account in expired:
                try:
                    await self.store.accounts.delete(account.id)
                except NotFound:
                    continue  # deleted meanwhile (through the API)
                addresses += 1
                messages += account.message_count
                size += account.used_bytes
        report = ReapReport(addresses, messages, size)
        if addresses:
            log.info(
                "tempmail reaper removed {addresses} expired addresses"
                " ({messages} messages, {bytes} bytes)",
                addresses=addresses,
                messages=messages,
                bytes=size,
            )
        return report


def build_service(runtime: Any) -> TempmailReaper:
    """The background-service builder registered in ``a3mail.background``."""
    clock = runtime.reactor
    if clock is None:
        from twisted.internet import reactor as clock
    return TempmailReaper(runtime.store, clock)
