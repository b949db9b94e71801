"""The webhook dispatcher: turns bus events into outbox rows and POSTs due deliveries.

One :class:`WebhookService` runs in every a3mail process.  It

- hears ``message.added`` on the store's bus and hands the added messages, in batches, to
  ``store.webhooks.fan_out_messages`` (idempotent in the database: every process hears the
  same NOTIFY, one row per webhook results);
- after start-up, after the bus reconnected, and after a fan-out problem, runs
  ``store.webhooks.catch_up`` over the last hour, for messages nobody fanned out;
- leases due deliveries (``FOR UPDATE SKIP LOCKED``; several processes share the work),
  POSTs them with :class:`~a3mail.ops.webhook_client.WebhookClient` (at most
  :data:`CONCURRENCY` at once), and records every attempt; failed attempts are retried
  after :data:`BACKOFF`, up to ``[webhooks] max_attempts``;
- is woken by ``webhook.queued`` events (rows inserted by any process), by a timer set to
  the next due delivery, and polls every ``[webhooks] poll_interval`` in any case;
- deletes finished deliveries older than ``[webhooks] retention`` once an hour.

Time comes from the injected clock (the reactor in production, a ``Clock`` in tests): the
dispatcher passes its "now" to the store for leases and retry times.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from a3mail.config import WebhooksConfig
from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics, detached
from a3mail.ops.webhook_client import WebhookClient
from a3mail.runtime import Runtime
from a3mail.store import events
from a3mail.store.webhook_events import WEBHOOK_QUEUED, MessageKey
from a3mail.store.webhooks import DueDelivery

log = get_logger(__name__)

#: Seconds to wait after the 1st, 2nd, ... failed attempt (the last step repeats).
BACKOFF = (30.0, 120.0, 600.0, 3600.0, 21600.0)
#: Deliveries POSTed at the same time by one process.
CONCURRENCY = 10
#: Messages fanned out per database round trip.
FAN_OUT_BATCH = 200
#: Added messages waiting for fan-out beyond which new ones are left to the catch-up scan.
MAX_PENDING = 10_000
#: How far back the catch-up scan looks (seconds).
CATCH_UP_WINDOW = 3600.0
#: How often finished deliveries are pruned (seconds).
PRUNE_EVERY = 3600.0
#: The shortest wait for a timer set from the next due time (seconds).
MIN_TIMER = 0.5


def worker_name() -> str:
    """A name for this dispatcher's leases, unique per process and service."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class WebhookService(Service):
    """Fans events out to webhooks and delivers them (see the module docstring).

    Also sets ``store.webhooks.allow_private_targets`` from the configuration, so that
    webhooks created through the store follow ``[webhooks] allow_private_targets``.
    """

    name = "webhooks"

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Any = None,
        client: WebhookClient | None = None,
        worker: str | None = None,
        settings: WebhooksConfig | None = None,
    ) -> None:
        self.store = runtime.store
        self.metrics: Metrics = getattr(runtime, "metrics", None) or detached()
        self.settings = settings if settings is not None else runtime.config.webhooks
        self.clock = clock if clock is not None else runtime.reactor
        self.client = client or WebhookClient(
            runtime.reactor,
            clock=self.clock,
            allow_private=self.settings.allow_private_targets,
            timeout=self.settings.timeout,
        )
        self.worker = worker or worker_name()
        self.lease_seconds = 2 * self.settings.timeout + 30
        self.store.webhooks.allow_private_targets = self.settings.allow_private_targets
        self._pending: dict[MessageKey, None] = {}  # an ordered set
        self._catch_up_needed = True
        self._last_prune: float | None = None
        self._again = False
        self._round: defer.Deferred[None] | None = None
        self._fanning: defer.Deferred[None] | None = None
        self._chores: defer.Deferred[None] | None = None
        self._posts: dict[int, defer.Deferred[Any]] = {}
        self._deliveries: set[defer.Deferred[None]] = set()
        self._timer: IDelayedCall | None = None
        self._poller: LoopingCall | None = None
        self._unsubscribe: Any = None

    # -- life cycle ------------------------------------------------------------------------

    def startService(self) -> None:
        """Listen to the bus and start polling (the first poll runs at once)."""
        super().startService()
        self._unsubscribe = self.store.events.subscribe(self._heard)
        self._poller = LoopingCall(self._tick)
        self._poller.clock = self.clock
        self._poller.start(self.settings.poll_interval, now=True)

    def stopService(self) -> defer.Deferred[None]:
        """Stop listening and polling, abort POSTs in flight (their leases are given
        back), and fire once every task has ended."""
        super().stopService()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        self._cancel_timer()
        self._pending.clear()
        for post in list(self._posts.values()):
            post.cancel()
        tasks = [self._round, self._fanning, self._chores, *self._deliveries]
        waiting = [d for d in tasks if d is not None]
        return defer.DeferredList(waiting).addCallback(lambda _: None)  # type: ignore[arg-type]

    # -- events -----------------------------------------------------------------------------

    def _heard(self, event: events.Event) -> None:
        if not self.running:
            return
        if event.type == events.MESSAGE_ADDED:
            self._message_added(event.data)
        elif event.type == WEBHOOK_QUEUED:
            self.wake()
        elif event.type == events.BUS_RECONNECTED:
            self._catch_up_needed = True
            self._run_chores()

    def _message_added(self, data: dict[str, Any]) -> None:
        try:
            key = (int(data["account_id"]), int(data["mailbox_id"]), int(data["uid"]))
        except (KeyError, TypeError, ValueError):
            return
        if len(self._pending) >= MAX_PENDING:
            if not self._catch_up_needed:
                log.warn("webhooks: fan-out backlog full; the catch-up scan will take over")
            self._catch_up_needed = True
            return
        self._pending[key] = None
        if self._fanning is None:
            self._start(self._fan_out(), "_fanning")

    async def _fan_out(self) -> None:
        while self._pending and self.running:
            batch = list(self._pending)[:FAN_OUT_BATCH]
            for key in batch:
                del self._pending[key]
            try:
                queued = await self.store.webhooks.fan_out_messages(batch)
            except Exception as e:
                log.warn("webhooks: fan-out failed ({error}); will catch up", error=_reason(e))
                self._catch_up_needed = True
                continue
            if queued:
                self.wake()

    # -- periodic chores ----------------------------------------------------------------------

    def _tick(self) -> None:
        self._run_chores()
        self.wake()

    def _run_chores(self) -> None:
        if self._chores is None and self.running:
            self._start(self._do_chores(), "_chores")

    async def _do_chores(self) -> None:
        if self._catch_up_needed:
            self._catch_up_needed = False
            try:
                queued = await self.store.webhooks.catch_up(CATCH_UP_WINDOW)
            except Exception as e:
                self._catch_up_needed = True
                log.warn("webhooks: catch-up failed: {error}", error=_reason(e))
            else:
                if queued:
                    log.info("webhooks: catch-up queued {n} deliveries", n=queued)
                    self.wake()
        now = self.clock.seconds()
        if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            try:
                await self.store.webhooks.prune(self.settings.retention)
            except Exception as e:
                log.warn("webhooks: pruning failed: {error}", error=_reason(e))

    # -- dispatching ------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due deliveries now (or right after the current look)."""
        if not self.running:
            return
        if self._round is not None:
            self._again = True
            return
        self._cancel_timer()
        self._start(self._dispatch(), "_round")

    def now(self) -> datetime:
        """The clock's time."""
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    async def _dispatch(self) -> None:
        try:
            while self.running:
                self._again = False
                await self._lease_and_send()
                if self.running and len(self._posts) < CONCURRENCY:
                    await self._set_timer()
                if not self._again:
                    break
        except Exception as e:
            log.warn("webhooks: dispatching failed: {error}", error=_reason(e))

    async def _lease_and_send(self) -> None:
        """Lease and start due deliveries until none is left or CONCURRENCY are in flight
        (each finishing delivery wakes the dispatcher again)."""
        while self.running:
            free = CONCURRENCY - len(self._posts)
            if free <= 0:
                return
            due = await self.store.webhooks.lease(
                self.worker, now=self.now(), lease_seconds=self.lease_seconds, limit=free
            )
            if not self.running:  # stopped while leasing: give these back, start nothing
                await self.store.webhooks.release([d.id for d in due], self.worker)
                return
            for delivery in due:
                self._start_delivery(delivery)
            if len(due) < free:
                return

    async def _set_timer(self) -> None:
        """Wake up when the next delivery is due (at most one poll interval from now)."""
        due = await self.store.webhooks.next_due()
        if due is None or not self.running:
            return
        delay = (due - self.now()).total_seconds()
        delay = min(max(delay, MIN_TIMER), self.settings.poll_interval)
        self._cancel_timer()
        self._timer = self.clock.callLater(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.wake()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _start_delivery(self, delivery: DueDelivery) -> None:
        post = self.client.post(delivery)
        self._posts[delivery.id] = post
        task = defer.Deferred.fromCoroutine(self._deliver(delivery, post))
        self._deliveries.add(task)
        task.addBoth(lambda _: self._deliveries.discard(task))

    async def _deliver(self, delivery: DueDelivery, post: defer.Deferred[Any]) -> None:
        try:
            try:
                outcome = await post
            except Exception as e:
                # Stopping aborts POSTs in flight; depending on how far the request got, the
                # abort surfaces as CancelledError or as a connection error.  Either way the
                # attempt did not happen: give the lease back.
                if isinstance(e, defer.CancelledError) or not self.running:
                    await self.store.webhooks.release([delivery.id], self.worker)
                    return
                raise
            finally:
                self._posts.pop(delivery.id, None)
            status = await self.store.webhooks.record_attempt(
                delivery.id,
                self.worker,
                outcome,
                now=self.now(),
                max_attempts=self.settings.max_attempts,
                backoff=BACKOFF,
            )
        except Exception as e:
            log.warn(
                "webhooks: delivery {id}: cannot record the attempt: {error}",
                id=delivery.id,
                error=_reason(e),
            )
            return
        self._log_outcome(delivery, outcome, status)
        self.wake()

    def _log_outcome(self, delivery: DueDelivery, outcome: Any, status: str | None) -> None:
        what = outcome.error or f"HTTP {outcome.response_status}"
        fields = {"id": delivery.id, "event": delivery.event, "url": delivery.url, "what": what}
        self.metrics.webhook_delivery(status or "taken_over")
        if status is None:
            log.warn("webhooks: delivery {id} was taken over by another process", **fields)
        elif status == "failed":
            log.warn("webhooks: delivery {id} ({event}) to {url} failed for good: {what}", **fields)
        elif status == "retrying":
            log.info("webhooks: delivery {id} ({event}) to {url}: {what}; will retry", **fields)
        else:
            log.debug("webhooks: delivery {id} ({event}) to {url}: {what}", **fields)

    # -- helpers ----------------------------------------------------------------------------

    def _start(self, coro: Coroutine[Any, Any, None], slot: str) -> None:
        """Run *coro*, kept in attribute *slot* while it runs (so stopService can wait)."""
        d = defer.Deferred.fromCoroutine(coro)
        if not d.called:
            setattr(self, slot, d)
        d.addBoth(self._ended, slot, d)

    def _ended(self, result: Any, slot: str, d: defer.Deferred[None]) -> None:
        if getattr(self, slot) is d:
            setattr(self, slot, None)
        if isinstance(result, Failure):
            log.failure("webhooks: {slot} task failed", result, slot=slot)


def _reason(error: Exception) -> str:
    return str(error).strip() or type(error).__name__


def build_service(runtime: Runtime) -> WebhookService:
    """The background-service builder registered in ``a3mail.background``."""
    return WebhookService(runtime)
