"""Webhooks: registered endpoints and their durable outbox of deliveries.

When an event happens, ONE ``webhook_deliveries`` row per (webhook, event) is inserted,
with the JSON body frozen at that moment.  Rows are keyed by (webhook, event, event key)
and inserted with ``ON CONFLICT DO NOTHING``, so every a3mail process may react to the
same bus event and still only one row results.  A dispatcher (``a3mail.ops.webhooks``)
leases due rows (:meth:`Webhooks.lease`, ``FOR UPDATE SKIP LOCKED`` with a lease expiry,
so a dead process's rows are taken over), POSTs them and records every attempt
(:meth:`Webhooks.record_attempt`), retrying with backoff until ``max_attempts``.

Secrets are stored in plain text: the dispatcher needs them to sign each body with
HMAC-SHA256.  They are returned once, by :meth:`Webhooks.create`; ``list`` and ``get``
return ``secret=None``.
"""

from __future__ import annotations

import builtins
import secrets as secrets_module
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import psycopg

from a3mail.store import webhook_events
from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.records import LimitExceeded, NotFound
from a3mail.store.webhook_events import EVENTS, MessageKey
from a3mail.store.webhook_targets import check_url

STATUSES = ("pending", "retrying", "delivered", "failed")
MAX_WEBHOOKS_PER_OWNER = 100
MAX_DESCRIPTION = 500
MAX_SECRET = 256
MIN_SECRET = 8
MAX_ERROR_TEXT = 500
_WEBHOOK_COLUMNS = (
    "id, url, events, account_id, description, enabled, created_at, last_success_at,"
    " last_failure_at, failure_count"
)
_DELIVERY_COLUMNS = (
    "id, webhook_id, event, event_id, status, attempts, response_status, last_error,"
    " created_at, next_attempt_at, delivered_at"
)


@attrs.frozen
class Webhook:
    """A registered webhook.  ``secret`` is set only in the record :meth:`Webhooks.create`
    returns; every other read gives None."""

    id: int
    url: str
    events: tuple[str, ...]
    secret: str | None = attrs.field(repr=False)
    account_id: int | None
    description: str
    enabled: bool
    created_at: datetime
    last_success_at: datetime | None
    last_failure_at: datetime | None
    failure_count: int


@attrs.frozen
class WebhookAttempt:
    """One HTTP attempt of a delivery: its outcome and how long it took."""

    attempt: int
    started_at: datetime
    duration_ms: int
    response_status: int | None
    error: str | None


@attrs.frozen
class WebhookDelivery:
    """One event for one webhook, with its delivery state and every attempt so far."""

    id: int
    webhook_id: int
    event: str
    event_id: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    attempt_log: tuple[WebhookAttempt, ...] = ()


@attrs.frozen
class DueDelivery:
    """A leased delivery, with what the dispatcher needs to send it."""

    id: int
    webhook_id: int
    url: str
    secret: str = attrs.field(repr=False)
    event: str
    event_id: str
    body: bytes = attrs.field(repr=False)
    attempts: int


@attrs.frozen
class AttemptOutcome:
    """What happened when a delivery was POSTed: a response status, or an error text."""

    started_at: datetime
    duration: float
    response_status: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx response."""
        return (
            self.error is None
            and self.response_status is not None
            and (200 <= self.response_status < 300)
        )


def backoff_delay(attempts: int, schedule: Sequence[float]) -> float:
    """Seconds to wait after the *attempts*-th failed attempt (the schedule's last step
    repeats)."""
    return float(schedule[min(max(attempts, 1), len(schedule)) - 1])


class Webhooks:
    """Create, list and delete webhooks; queue events for them; lease and record deliveries.

    ``allow_private_targets`` (set from ``[webhooks] allow_private_targets`` by the webhook
    service) lets :meth:`create` accept URLs naming loopback or private IP addresses.
    """

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.allow_private_targets = False

    # -- the registry --------------------------------------------------------------------

    @deferred
    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        account_id: int | None = None,
        description: str = "",
    ) -> Webhook:
        """Register a webhook; a secret is generated when none is given.  The returned
        record is the only one that carries the secret.  ValueError for a bad URL, event,
        secret or description; NotFound for an unknown account; LimitExceeded past
        :data:`MAX_WEBHOOKS_PER_OWNER` webhooks of one account (or of the admins)."""
        url = check_url(url, allow_private=self.allow_private_targets)
        chosen = _check_events(events)
        secret = _check_secret(secret)
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ValueError(f"description must be a string of at most {MAX_DESCRIPTION}")
        async with self.ctx.db.transaction() as conn:
            # One creation at a time per owner, so the count below stays true.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"a3mail.webhooks:{account_id}",),
            )
            count = await fetchone(
                conn,
                "SELECT count(*) AS n FROM webhooks WHERE account_id IS NOT DISTINCT FROM %s",
                (account_id,),
            )
            if count["n"] >= MAX_WEBHOOKS_PER_OWNER:
                raise LimitExceeded(f"at most {MAX_WEBHOOKS_PER_OWNER} webhooks per owner")
            try:
                row = await fetchone(
                    conn,
                    "INSERT INTO webhooks (url, events, secret, account_id, description)"
                    f" VALUES (%s, %s, %s, %s, %s) RETURNING {_WEBHOOK_COLUMNS}",
                    (url, list(chosen), secret, account_id, description),
                )
            except psycopg.errors.ForeignKeyViolation:
                raise NotFound(f"no such account: {account_id}") from None
        return _webhook(row, secret=secret)

    @deferred
    async def list(self, account_id: int | None = None) -> builtins.list[Webhook]:
        """Every webhook (oldest first), or only those of *account_id*."""
        where, params = (
            ("", ()) if account_id is None else (" WHERE account_id = %s", (account_id,))
        )
        rows = await self.ctx.db.fetchall(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks{where} ORDER BY id", params
        )
        return [_webhook(r) for r in rows]

    @deferred
    async def get(self, webhook_id: int) -> Webhook:
        """One webhook (without its secret); NotFound otherwise."""
        row = await self.ctx.db.fetchone(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = %s", (webhook_id,)
        )
        if row is None:
            raise NotFound(f"no such webhook: {webhook_id}")
        return _webhook(row)

    @deferred
    async def delete(self, webhook_id: int) -> Webhook:
        """Remove a webhook with its deliveries (pending ones are never sent); returns it."""
        row = await self.ctx.db.fetchone(
            f"DELETE FROM webhooks WHERE id = %s RETURNING {_WEBHOOK_COLUMNS}", (webhook_id,)
        )
        if row is None:
            raise NotFound(f"no such webhook: {webhook_id}")
        return _webhook(row)

    @deferred
    async def deliveries(
        self, webhook_id: int, *, limit: int = 20, offset: int = 0
    ) -> tuple[builtins.list[WebhookDelivery], int]:
        """A page of a webhook's deliveries, newest first, each with its attempts, and the
        total number of deliveries.  NotFound for an unknown webhook."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        async with self.ctx.db.connection() as conn:
            total = await fetchone(
                conn,
                "SELECT (SELECT count(*) FROM webhook_deliveries WHERE webhook_id = w.id) AS n"
                " FROM webhooks w WHERE w.id = %s",
                (webhook_id,),
            )
            if total is None:
                raise NotFound(f"no such webhook: {webhook_id}")
            rows = await fetchall(
                conn,
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = %s"
                " ORDER BY id DESC LIMIT %s OFFSET %s",
                (webhook_id, limit, offset),
            )
            attempts = await fetchall(
                conn,
                "SELECT delivery_id, attempt, started_at, duration_ms, response_status, error"
                " FROM webhook_attempts WHERE delivery_id = ANY(%s) ORDER BY attempt",
                ([r["id"] for r in rows],),
            )
        log: dict[int, builtins.list[WebhookAttempt]] = {}
        for a in attempts:
            delivery_id = a.pop("delivery_id")
            log.setdefault(delivery_id, []).append(WebhookAttempt(**a))
        return [_delivery(r, log.get(r["id"], ())) for r in rows], int(total["n"])

    # -- queueing events -----------------------------------------------------------------

    @deferred
    async def emit(
        self,
        event: str,
        key: str,
        data: dict[str, Any],
        *,
        account_id: int | None = None,
        timestamp: datetime | None = None,
    ) -> int:
        """Queue *event* with *data* for every enabled webhook that subscribed to it (admin
        webhooks, and those of *account_id*).  *key* names the occurrence (e.g.
        ``"queue:<entry id>:sent"``): emitting the same event and key again, from any
        process, adds nothing.  Returns the number of deliveries queued.  Code that already
        holds a transaction uses :func:`a3mail.store.webhook_events.emit_in` instead."""
        async with self.ctx.db.transaction() as conn:
            return await webhook_events.emit_in(
                self.ctx, conn, event, key, data, account_id=account_id, timestamp=timestamp
            )

    @deferred
    async def fan_out_messages(self, keys: Iterable[MessageKey]) -> int:
        """Queue ``email.received`` for these added messages (account, mailbox, uid) that
        were delivered (not appended or copied) to an INBOX or Junk mailbox.  Idempotent;
        returns the number of deliveries queued."""
        async with self.ctx.db.transaction() as conn:
            return await webhook_events.fan_out_messages(self.ctx, conn, list(keys))

    @deferred
    async def catch_up(self, window: float, batch: int = 500) -> int:
        """Queue ``email.received`` for messages delivered in the last *window* seconds that
        no process turned into deliveries (e.g. while the bus was disconnected)."""
        return await webhook_events.catch_up(self.ctx, window, batch)

    # -- dispatching ---------------------------------------------------------------------

    @deferred
    async def lease(
        self, worker: str, *, now: datetime, lease_seconds: float, limit: int
    ) -> builtins.list[DueDelivery]:
        """Lease up to *limit* due deliveries of enabled webhooks for *worker* until
        *now* + *lease_seconds* (rows leased by another worker are skipped, expired leases
        taken over)."""
        until = now + timedelta(seconds=lease_seconds)
        rows = await self.ctx.db.fetchall(
            "WITH due AS (SELECT d.id FROM webhook_deliveries d"
            " JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= %(now)s"
            " AND (d.leased_until IS NULL OR d.leased_until <= %(now)s) AND w.enabled"
            " ORDER BY d.next_attempt_at, d.id LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED)"
            " UPDATE webhook_deliveries d SET leased_until = %(until)s, leased_by = %(worker)s"
            " FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id"
            " RETURNING d.id, d.webhook_id, w.url, w.secret, d.event, d.event_id, d.body,"
            " d.attempts",
            {"now": now, "until": until, "worker": worker, "limit": limit},
        )
        return [
            DueDelivery(**{**r, "event_id": str(r["event_id"]), "body": r["body"].encode()})
            for r in sorted(rows, key=lambda r: r["id"])
        ]

    @deferred
    async def record_attempt(
        self,
        delivery_id: int,
        worker: str,
        outcome: AttemptOutcome,
        *,
        now: datetime,
        max_attempts: int,
        backoff: Sequence[float],
    ) -> str | None:
        """Record one attempt by *worker* and move the delivery on: ``delivered`` on a 2xx,
        else ``retrying`` after the backoff, or ``failed`` after *max_attempts*.  Updates the
        webhook's last success/failure.  Returns the new status, or None if the delivery is
        gone or no longer leased by *worker* (nothing is recorded then)."""
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(
                conn,
                "SELECT webhook_id, attempts FROM webhook_deliveries WHERE id = %s"
                " AND leased_by = %s AND status IN ('pending', 'retrying') FOR UPDATE",
                (delivery_id, worker),
            )
            if row is None:
                return None
            attempt = row["attempts"] + 1
            error = None if outcome.error is None else outcome.error[:MAX_ERROR_TEXT]
            if outcome.succeeded:
                status, next_at = "delivered", now
            elif attempt >= max_attempts:
                status, next_at = "failed", now
            else:
                status = "retrying"
                next_at = now + timedelta(seconds=backoff_delay(attempt, backoff))
            if error is None and not outcome.succeeded:
                error = f"HTTP {outcome.response_status}"
            await conn.execute(
                "UPDATE webhook_deliveries SET status = %s, attempts = %s, response_status = %s,"
                " last_error = %s, next_attempt_at = %s, delivered_at = %s, leased_until = NULL,"
                " leased_by = NULL WHERE id = %s",
                (
                    status,
                    attempt,
                    outcome.response_status,
                    None if outcome.succeeded else error,
                    next_at,
                    now if outcome.succeeded else None,
                    delivery_id,
                ),
            )
            await conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,"
                " response_status, error, worker) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    delivery_id,
                    attempt,
                    outcome.started_at,
                    max(0, round(outcome.duration * 1000)),
                    outcome.response_status,
                    None if outcome.succeeded else error,
                    worker,
                ),
            )
            if outcome.succeeded:
                await conn.execute(
                    "UPDATE webhooks SET last_success_at = %s, failure_count = 0 WHERE id = %s",
                    (now, row["webhook_id"]),
                )
            else:
                await conn.execute(
                    "UPDATE webhooks SET last_failure_at = %s, failure_count = failure_count + 1"
                    " WHERE id = %s",
                    (now, row["webhook_id"]),
                )
        return status

    @deferred
    async def release(self, delivery_ids: Sequence[int], worker: str) -> None:
        """Give back leases of *worker* without recording an attempt (shutdown)."""
        await self.ctx.db.execute(
            "UPDATE webhook_deliveries SET leased_until = NULL, leased_by = NULL"
            " WHERE id = ANY(%s) AND leased_by = %s",
            (builtins.list(delivery_ids), worker),
        )

    @deferred
    async def next_due(self) -> datetime | None:
        """When the earliest unfinished delivery of an enabled webhook becomes due (its next
        attempt, or the end of its current lease), or None if there is none."""
        row = await self.ctx.db.fetchone(
            "SELECT min(greatest(d.next_attempt_at, coalesce(d.leased_until, d.next_attempt_at)))"
            " AS due FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status IN ('pending', 'retrying') AND w.enabled"
        )
        return None if row is None else row["due"]

    @deferred
    async def prune(self, older_than: float, batch: int = 1000) -> int:
        """Delete up to *batch* finished (delivered or failed) deliveries created more than
        *older_than* seconds ago; returns how many went."""
        return await self.ctx.db.execute(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
            " WHERE status IN ('delivered', 'failed')"
            " AND created_at < now() - make_interval(secs => %s) LIMIT %s)",
            (older_than, batch),
        )


def _check_events(events: Sequence[str]) -> tuple[str, ...]:
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise ValueError(f"events must be a non-empty list of: {', '.join(EVENTS)}")
    for event in events:
        if event not in EVENTS:
            raise ValueError(
                f"unknown webhook event {event!r}: expected one of {', '.join(EVENTS)}"
            )
    return tuple(dict.fromkeys(events))


def _check_secret(secret: str | None) -> str:
    if secret is None:
        return secrets_module.token_urlsafe(32)
    if (
        not isinstance(secret, str)
        or not MIN_SECRET <= len(secret) <= MAX_SECRET
        or not secret.isprintable()
    ):
        raise ValueError(f"secret must be {MIN_SECRET} to {MAX_SECRET} printable characters")
    return secret


def _webhook(row: dict[str, Any], secret: str | None = None) -> Webhook:
    return Webhook(**{**row, "events": tuple(row["events"]), "secret": secret})


def _delivery(row: dict[str, Any], attempts: Iterable[WebhookAttempt]) -> WebhookDelivery:
    return WebhookDelivery(
        **{**row, "event_id": str(row["event_id"]), "attempt_log": tuple(attempts)}
    )
