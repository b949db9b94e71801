"""The outbound queue runner: lease due entries, deliver them, record, bounce, retry.

Every a3mail process runs one :class:`QueueRunner` (background service ``outbound``).  Each
round leases due entries (``store.outbound.lease``: ``FOR UPDATE SKIP LOCKED`` with a lease
expiry, so processes share the queue and a dead process's entries are taken over once their
lease expires) and delivers each: MX lookup (:mod:`a3mail.outbound.mx`) or the smarthost,
then one ESMTP transaction per hop until one answers (:mod:`a3mail.outbound.client`), the
message file streamed.  2xx replies finish a recipient, 5xx fail it at once, anything else
(4xx, connection trouble, DNS trouble) defers it to the next step of the retry schedule;
a recipient still deferred after ``max_queue_lifetime`` fails.  The results are committed
(``store.outbound.record``) together with the notices they call for: one RFC 3464 bounce to
the envelope sender for the failures (never to the null sender), a delay warning once after
``delay_warning`` (:mod:`a3mail.outbound.notices`); after the commit the notices are sent and
the events ``email.sent`` / ``email.deferred`` / ``email.bounced`` go on the bus and to
webhooks.  Each poll also sends notices left unsent by a process that died.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import LoopingCall

from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics, detached
from a3mail.outbound.client import (
    Attempt,
    ClientSettings,
    DeliveryClient,
    SessionError,
    deliver_to_hop,
)
from a3mail.outbound.dsn import original_headers
from a3mail.outbound.mx import Hop, MXFinder, RouteError, parse_host_port
from a3mail.outbound.notices import NoticeSender
from a3mail.outbound.stats import OutboundStats
from a3mail.store.notices import Notice
from a3mail.store.outbound import LeasedEntry, RecipientResult
from a3mail.store.queue import QUEUE_ADDED

log = get_logger(__name__)

#: Postfix-like: 5 min, doubling, at most 4 h between attempts.
DEFAULT_SCHEDULE = (300.0, 600.0, 1200.0, 2400.0, 4800.0, 9600.0, 14400.0)
HEADER_BYTES = 64 * 1024


def retry_delay(attempts: int, schedule: Sequence[float] = DEFAULT_SCHEDULE) -> float:
    """Seconds to wait after the *attempts*-th failed attempt (1-based); the last step of
    the schedule repeats."""
    return float(schedule[min(max(attempts, 1), len(schedule)) - 1])


def worker_name() -> str:
    """This process's name in ``leased_by``."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@attrs.frozen
class Smarthost:
    """Send everything (or one domain's mail) through this relay."""

    host: str
    port: int
    tls: str = "starttls"
    username: str | None = None
    password: str | None = None


@attrs.frozen
class RunnerSettings:
    """The runner's knobs (durations in seconds)."""

    helo_name: str
    poll_interval: float = 10.0
    lease_time: float = 600.0
    concurrency: int = 20
    connections_per_domain: int = 5
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    dns_timeout: float = 30.0
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    max_queue_lifetime: float = 5 * 86400.0
    delay_warning: float = 4 * 3600.0
    tls: str = "starttls"
    verify_certificates: bool = False
    smarthost: Smarthost | None = None
    domain_smarthosts: dict[str, Smarthost] = attrs.field(factory=dict)


class QueueRunner(Service):
    """Delivers the outbound queue (see the module docstring)."""

    name = "outbound"

    def __init__(
        self,
        store: Any,
        reactor: Any,
        finder: MXFinder,
        settings: RunnerSettings,
        *,
        worker: str | None = None,
        signer: Any = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else detached()
        self.store = store
        self.reactor = reactor
        self.finder = finder
        self.settings = settings
        self.worker = worker or worker_name()
        self.signer = signer
        self.stats = OutboundStats()
        self._active: dict[int, defer.Deferred[None]] = {}
        self._clients: set[DeliveryClient] = set()
        self._limits: dict[str, defer.DeferredSemaphore] = {}
        self._round: defer.Deferred[None] | None = None
        self._again = False
        self._poller: LoopingCall | None = None
        self._unsubscribe: Any = None
        self.notices = NoticeSender(store, settings.helo_name, self.worker, settings.lease_time)
        self._look_for_notices = True

    # -- life cycle -------------------------------------------------------------------

    def startService(self) -> None:
        """Poll the queue (at once, then every poll interval) and on ``queue.added``."""
        super().startService()
        self._unsubscribe = self.store.events.subscribe(self._heard)
        self._poller = LoopingCall(self._poll)
        self._poller.clock = self.reactor
        self._poller.start(self.settings.poll_interval, now=True)

    def stopService(self) -> defer.Deferred[None]:
        """Stop polling, abort the SMTP connections in flight (those deliveries are recorded
        as deferred) and fire once every delivery has been recorded."""
        super().stopService()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.abortConnection()  # type: ignore[attr-defined]
        close = getattr(self.finder.resolver, "close", None)
        if close is not None:
            close()
        waiting = [d for d in [self._round, *self._active.values()] if d is not None]
        return defer.DeferredList(waiting).addCallback(lambda _: None)  # type: ignore[arg-type]

    def _heard(self, event: Any) -> None:
        if event.type == QUEUE_ADDED:
            self.wake()

    def _poll(self) -> None:
        self._look_for_notices = True
        self.wake()

    def wake(self) -> None:
        """Look for due entries now (or right after the round in progress)."""
        if not self.running:
            return
        if self._round is not None:
            self._again = True
            return
        self._round = defer.Deferred.fromCoroutine(self._lease_round())

        def done(_: object) -> None:
            self._round = None
            if self._again:
                self._again = False
                self.wake()

        self._round.addBoth(done)

    async def _lease_round(self) -> None:
        if self._look_for_notices:
            self._look_for_notices = False
            try:
                await self.notices.send_pending()
            except Exception as exc:
                log.warn("outbound: cannot look for unsent notices: {error}", error=exc)
        free = self.settings.concurrency - len(self._active)
        if free <= 0:
            return
        try:
            leased = await self.store.outbound.lease(self.worker, free, self.settings.lease_time)
        except Exception as exc:
            self.stats.lease_errors += 1
            log.warn("outbound: cannot lease queue entries: {error}", error=exc)
            return
        if not self.running:  # stopped while leasing: give these back, start nothing
            for item in leased:
                await self.store.outbound.release(item.entry.id, self.worker)
            return
        for item in leased:
            self._start(item)
        if len(leased) == free:
            self._again = True

    def _start(self, item: LeasedEntry) -> None:
        entry_id = item.entry.id
        task = defer.Deferred.fromCoroutine(self.deliver(item))

        def done(result: object) -> object:
            self._active.pop(entry_id, None)
            if isinstance(result, defer.Failure):
                log.failure("outbound: delivery of entry {id} failed", result, id=entry_id)
            self.wake()
            return None

        self._active[entry_id] = task
        task.addBoth(done)

    # -- one entry --------------------------------------------------------------------

    async def deliver(self, item: LeasedEntry) -> None:
        """Deliver one leased entry to its pending recipients and record the outcome."""
        entry = item.entry
        pending = list(item.pending)
        if not pending:  # e.g. a finished entry queued again by an admin: nothing to send
            await self.store.outbound.record(entry.id, self.worker, [], None)
            return
        self.stats.attempts += 1
        results = await self._attempt(item, pending)
        try:
            start = await self.store.outbound.read_message(
                entry.blob_path, entry.skip_bytes, HEADER_BYTES
            )
            headers = original_headers(start)
        except Exception:
            headers = b""
        now = datetime.now(UTC)
        age = (now - entry.created_at).total_seconds()
        final: list[RecipientResult] = []
        for result in results:
            if result.status == "deferred" and age >= self.settings.max_queue_lifetime:
                result = attrs.evolve(
                    result,
                    status="failed",
                    reply=f"4.4.7 delivery time expired; last error: {result.reply}",
                )
            final.append(result)
        deferred = [r for r in final if r.status == "deferred"]
        retry_at = now + timedelta(seconds=retry_delay(entry.attempts + 1, self.settings.schedule))
        error = deferred[0].reply if deferred else None
        warn_delay = not item.delay_warned and age >= self.settings.delay_warning
        drafts = self.notices.drafts(item, final, headers, warn_delay=warn_delay)
        outcome = await self.store.outbound.record(
            entry.id,
            self.worker,
            final,
            retry_at if deferred else None,
            error,
            notices=drafts,
            notice_lease=self.settings.lease_time,
        )
        if not outcome.recorded:
            log.warn("outbound: lease of entry {id} was lost; result dropped", id=entry.id)
            return
        self._count(final)
        for notice_id, draft in zip(outcome.notice_ids, drafts, strict=True):
            if await self.notices.send(Notice(notice_id, draft)):
                if draft.action == "failed":
                    self.stats.bounces += 1
                else:
                    self.stats.delay_warnings += 1
        await self._after(item, final, headers)

    async def _attempt(self, item: LeasedEntry, pending: list[str]) -> list[RecipientResult]:
        entry = item.entry
        route = self.settings.domain_smarthosts.get(entry.domain)
        if route is None and entry.domain not in self.finder.static:
            route = self.settings.smarthost
        try:
            if route is not None:
                host, port = route.host, route.port
                hops = await self.finder.static_hops([f"[{host}]:{port}"])
            else:
                hops = await self.finder.find_hops(entry.domain)
        except RouteError as exc:
            status = "failed" if exc.code >= 500 else "deferred"
            return [RecipientResult(r, status, exc.code, f"{exc.status} {exc}") for r in pending]
        settings = self._client_settings(route)
        last: SessionError | None = None
        for hop in hops:
            try:
                attempt = await self._one_hop(hop, settings, item, pending)
            except SessionError as exc:
                last = exc
                if exc.permanent:
                    break
                continue
            return _classify(attempt, pending)
        assert last is not None
        status = "failed" if last.permanent else "deferred"
        return [RecipientResult(r, status, last.code, last.reply, last.remote) for r in pending]

    def _client_settings(self, route: Smarthost | None) -> ClientSettings:
        s = self.settings
        if route is None:
            return ClientSettings(
                s.helo_name, s.connect_timeout, s.command_timeout, s.tls, s.verify_certificates
            )
        return ClientSettings(
            s.helo_name,
            s.connect_timeout,
            s.command_timeout,
            route.tls,
            s.verify_certificates,
            route.username,
            route.password,
        )

    async def _one_hop(
        self, hop: Hop, settings: ClientSettings, item: LeasedEntry, pending: list[str]
    ) -> Attempt:
        entry = item.entry
        limit = self._limits.setdefault(
            entry.domain, defer.DeferredSemaphore(self.settings.connections_per_domain)
        )
        await limit.acquire()
        try:
            message = await self.store.outbound.open_message(entry.blob_path, entry.skip_bytes)
            try:
                size = entry.size - entry.skip_bytes
                if self.signer is not None:
                    message, size = await self.signer.wrap(entry, message, size)
                return await deliver_to_hop(
                    self.reactor, hop, settings, entry.sender, pending, message, size, self._clients
                )
            finally:
                message.close()
        finally:
            limit.release()

    def _count(self, results: Sequence[RecipientResult]) -> None:
        for result in results:
            self.metrics.delivery(result.status)
            if result.status == "sent":
                self.stats.sent += 1
            elif result.status == "failed":
                self.stats.failed += 1
            else:
                self.stats.deferred += 1

    # -- after the commit: bounces, warnings, events ----------------------------------

    async def _after(
        self, item: LeasedEntry, results: list[RecipientResult], headers: bytes
    ) -> None:
        entry = item.entry
        sent = [r for r in results if r.status == "sent"]
        failed = [r for r in results if r.status == "failed"]
        deferred = [r for r in results if r.status == "deferred"]
        account_id = await self._local_account(entry.sender)
        subject = _subject(headers)
        for event, group in (
            ("email.sent", sent),
            ("email.bounced", failed),
            ("email.deferred", deferred),
        ):
            if not group:
                continue
            data: dict[str, Any] = {
                "user": entry.sender,
                "to": [r.recipient for r in group],
                "subject": subject,
                "queue_id": entry.id,
            }
            if event != "email.sent":
                data["error"] = f"{group[0].code} {group[0].reply}"
                data["attempts"] = entry.attempts + 1
            try:
                await self.store.publish(event, **data)
                await self.store.webhooks.emit(
                    event,
                    f"queue:{entry.id}:{entry.attempts + 1}:{event}",
                    data,
                    account_id=account_id,
                )
            except Exception as exc:
                log.warn("outbound: cannot announce {event}: {error}", event=event, error=exc)

    async def _local_account(self, address: str) -> int | None:
        if not address:
            return None
        try:
            # The account that owns the sender address (webhooks go to it), not whoever
            # the domain's catch-all delivers to.
            resolution = await self.store.accounts.resolve(address, catch_all=False)
        except Exception:
            return None
        return resolution.account_ids[0] if resolution.account_ids else None


def _classify(attempt: Attempt, pending: list[str]) -> list[RecipientResult]:
    results = []
    for recipient in pending:
        code, reply = attempt.replies.get(recipient, (421, "4.4.2 no answer"))
        if 200 <= code < 300:
            status = "sent"
        elif 500 <= code < 600:
            status = "failed"
        else:
            status = "deferred"
        results.append(RecipientResult(recipient, status, code, reply, attempt.remote))
    return results


def _subject(headers: bytes) -> str:
    from email.parser import BytesHeaderParser
    from email.policy import default

    try:
        return str(BytesHeaderParser(policy=default).parsebytes(headers).get("Subject", ""))
    except Exception:
        return ""


__all__ = ["QueueRunner", "RunnerSettings", "Smarthost", "parse_host_port", "retry_delay"]
