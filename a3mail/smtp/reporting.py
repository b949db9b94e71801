"""What the SMTP server tells the rest of a3mail about each message: counters and events.

Each accepted message publishes ``smtp.received`` and each refused one ``smtp.rejected`` on
the store's bus (through NOTIFY, so every a3mail process hears it: webhooks, metrics), and
updates the in-process :class:`~a3mail.smtp.stats.SmtpStats`.  Publishing happens after the
client has its reply and never delays or fails a session: errors are logged.  Events are
published in batches: one transaction for whatever accumulated within ``BATCH_DELAY``
(50 ms) or while the previous batch was being published.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics, detached
from a3mail.smtp.stats import SmtpStats
from a3mail.store import Store

log = get_logger(__name__)

RECEIVED = "smtp.received"
REJECTED = "smtp.rejected"

#: Events are published at most this long after the outcome, in one transaction per batch.
BATCH_DELAY = 0.05


class Reporter:
    """Counts and announces message outcomes for one listener."""

    def __init__(
        self,
        store: Store,
        stats: SmtpStats,
        listener: str,
        clock: IReactorTime | None = None,
        batch_delay: float = BATCH_DELAY,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.metrics = metrics if metrics is not None else detached()
        self.listener = listener
        self.clock = clock
        self.batch_delay = batch_delay
        self._timer: IDelayedCall | None = None
        self._queue: list[tuple[str, dict[str, Any]]] = []
        self._flushing: Deferred[None] | None = None
        self._waiting: list[Deferred[None]] = []

    def received(self, size: int, **data: Any) -> None:
        """A message was accepted."""
        self.stats.accepted(size)
        self.metrics.smtp_accepted(size)
        log.info(
            "{listener}: accepted {queue_id}: {size} bytes for {recipients} recipients",
            listener=self.listener,
            size=size,
            queue_id=data.get("queue_id"),
            recipients=data.get("recipients"),
        )
        self._publish(RECEIVED, size=size, **data)

    def rejected(self, reason: str, **data: Any) -> None:
        """A message was refused (at or after DATA) for *reason*."""
        self.stats.rejected(reason)
        self.metrics.smtp_rejected(reason)
        log.info(
            "{listener}: refused {queue_id}: {reason}",
            listener=self.listener,
            queue_id=data.get("queue_id"),
            reason=reason,
        )
        self._publish(REJECTED, reason=reason, **data)

    def _publish(self, event_type: str, **data: Any) -> None:
        self._queue.append((event_type, {"listener": self.listener, **data}))
        self._schedule()

    def _schedule(self) -> None:
        if self._flushing is not None or self._timer is not None:
            return
        if self.clock is None or self.batch_delay <= 0:
            self._flush()
        else:
            self._timer = self.clock.callLater(self.batch_delay, self._flush)

    def _flush(self) -> None:
        """Publish everything queued in one transaction; events queued meanwhile go in the
        next one."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        try:
            d = self.store.publish_all(batch)
        except Exception as e:  # e.g. no event loop: never let reporting break a session
            log.warn("cannot publish {count} events: {error}", count=len(batch), error=repr(e))
            return self._flushed(None)
        self._flushing = d
        d.addErrback(self._failed, len(batch))
        d.addBoth(self._flushed)

    def _failed(self, failure: Any, count: int) -> None:
        log.warn(
            "publishing {count} events failed: {error}",
            count=count,
            error=str(failure.value) or type(failure.value).__name__,
        )

    def _flushed(self, _: Any) -> None:
        self._flushing = None
        if self._queue and self._waiting:
            self._flush()
        elif self._queue:
            self._schedule()
        elif self._waiting:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def idle(self) -> Deferred[None]:
        """Fires when every event reported so far has been published (tests, shutdown)."""
        if self._flushing is None and not self._queue:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if self._flushing is None:
            self._flush()  # no need to wait for the batch timer
        return d
