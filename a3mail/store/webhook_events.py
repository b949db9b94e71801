"""Turning events into webhook deliveries: the event bodies and the idempotent fan-out.

Every event body has the same shape (the SirrChat webhook format, plus an ``id``)::

    {"id": "<uuid>", "event": "email.received", "timestamp": "2025-01-15T10:30:00Z",
     "data": {...}}

The ``id`` is derived from the event and its key, so every process that builds the body of
one event builds the same id; receivers can use it to discard duplicates.  One delivery
row per (webhook, event, key) is inserted with ``ON CONFLICT DO NOTHING``; when rows were
inserted, a ``webhook.queued`` event is published in the same transaction so that every
dispatcher wakes up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from psycopg import AsyncConnection

from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.names import INBOX

EMAIL_RECEIVED = "email.received"
EMAIL_SENT = "email.sent"
EMAIL_BOUNCED = "email.bounced"
EMAIL_DEFERRED = "email.deferred"
EVENTS = (EMAIL_RECEIVED, EMAIL_SENT, EMAIL_BOUNCED, EMAIL_DEFERRED)

#: Bus event published when deliveries were queued (data: ``count``).
WEBHOOK_QUEUED = "webhook.queued"

#: Mailboxes whose delivered messages are ``email.received`` events (by name, or the mailbox
#: with the \\Junk special use): where the SMTP server delivers.
RECEIVING_MAILBOXES = (INBOX, "Junk")

MAX_KEY = 500
MAX_ADDRESSES = 100
_NAMESPACE = uuid.UUID("7b0f6a2e-4f0c-4d1e-9a3b-a3a11a3a11a3")

MessageKey = tuple[int, int, int]  # (account_id, mailbox_id, uid)

# Messages delivered (their file is in the account's new/ directory: Messages.deliver; append
# and copy link into cur/) to a receiving mailbox, for which some enabled webhook that
# existed when the message arrived wants email.received.
_RECEIVED = (
    "SELECT m.id, m.account_id, m.mailbox_id, m.uid, b.uidvalidity, b.name AS mailbox,"
    " a.address, m.size, m.subject, m.message_id, m.sent_date, m.has_attachments,"
    " m.verification_code, m.preview, m.created_at, m.parsed->'from' AS from_list,"
    " m.parsed->'to' AS to_list, m.parsed->'cc' AS cc_list"
    " FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
    " JOIN accounts a ON a.id = m.account_id"
    " WHERE (b.name = ANY(%(boxes)s) OR b.special_use = '\\Junk')"
    " AND m.blob_path LIKE '%%/new/%%'"
    " AND EXISTS (SELECT 1 FROM webhooks w WHERE w.enabled AND %(event)s = ANY(w.events)"
    " AND (w.account_id IS NULL OR w.account_id = m.account_id)"
    " AND w.created_at <= m.created_at)"
)


@attrs.frozen
class PendingEvent:
    """One event to queue: its key, whose it is, when it happened and its data."""

    key: str
    account_id: int | None
    timestamp: datetime
    data: dict[str, Any]
    # Only webhooks created at or before this moment get it (None: any existing one).
    not_before: datetime | None = None


def event_id(event: str, key: str) -> uuid.UUID:
    """The id of an event, the same in every process."""
    return uuid.uuid5(_NAMESPACE, f"{event}\n{key}")


def iso_timestamp(moment: datetime) -> str:
    """``2025-01-15T10:30:00Z`` (UTC, whole seconds)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(event: str, key: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON text posted for an event (compact, UTF-8 characters kept)."""
    body = {
        "id": str(event_id(event, key)),
        "event": event,
        "timestamp": iso_timestamp(timestamp),
        "data": data,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


async def emit_in(
    ctx: StoreContext,
    conn: AsyncConnection[Any],
    event: str,
    key: str,
    data: dict[str, Any],
    *,
    account_id: int | None = None,
    timestamp: datetime | None = None,
) -> int:
    """Queue *event* inside the caller's transaction (see ``Webhooks.emit``)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}: expected one of {', '.join(EVENTS)}")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise ValueError(f"event key must be 1 to {MAX_KEY} characters")
    moment = timestamp or datetime.now(UTC)
    return await insert_events(ctx, conn, event, [PendingEvent(key, account_id, moment, data)])


async def insert_events(
    ctx: StoreContext, conn: AsyncConnection[Any], event: str, pending: Sequence[PendingEvent]
) -> int:
    """One delivery per (subscribed enabled webhook, event); existing ones are kept."""
    if not pending:
        return 0
    rows = await fetchall(
        conn,
        "INSERT INTO webhook_deliveries (webhook_id, event, event_key, event_id, body)"
        " SELECT w.id, %s, e.key, e.event_id, e.body"
        " FROM unnest(%s::text[], %s::bigint[], %s::uuid[], %s::text[], %s::timestamptz[])"
        " AS e(key, account_id, event_id, body, not_before)"
        " JOIN webhooks w ON w.enabled AND %s = ANY(w.events)"
        " AND (w.account_id IS NULL OR w.account_id = e.account_id)"
        " AND w.created_at <= coalesce(e.not_before, now())"
        " ORDER BY w.id, e.key ON CONFLICT (webhook_id, event, event_key) DO NOTHING"
        " RETURNING id",
        (
            event,
            [p.key for p in pending],
            [p.account_id for p in pending],
            [event_id(event, p.key) for p in pending],
            [event_body(event, p.key, p.timestamp, p.data) for p in pending],
            [p.not_before for p in pending],
            event,
        ),
    )
    if rows:
        await ctx.publish(conn, WEBHOOK_QUEUED, count=len(rows))
    return len(rows)


def message_key(row: dict[str, Any]) -> str:
    """The key of an added message: ``message:<account>:<mailbox>:<uid>:<uidvalidity>``."""
    return f"message:{row['account_id']}:{row['mailbox_id']}:{row['uid']}:{row['uidvalidity']}"


def received_data(row: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an ``email.received`` body, from a message row."""
    senders = _addresses(row["from_list"])
    return {
        "user": row["address"],
        "user_id": row["account_id"],
        "mailbox": row["mailbox"],
        "uid": row["uid"],
        "uidvalidity": row["uidvalidity"],
        "message_id": row["message_id"],
        "from": senders[0] if senders else "",
        "to": _addresses(row["to_list"]),
        "cc": _addresses(row["cc_list"]),
        "subject": row["subject"],
        "date": None if row["sent_date"] is None else iso_timestamp(row["sent_date"]),
        "size": row["size"],
        "has_attachments": row["has_attachments"],
        "verification_code": row["verification_code"],
        "preview": row["preview"],
    }


def _addresses(value: Any) -> list[str]:
    """Bare addresses from the parse's address list (at most MAX_ADDRESSES)."""
    if not isinstance(value, list):
        return []
    found = [a.get("address") for a in value if isinstance(a, dict)]
    return [a for a in found if isinstance(a, str) and a][:MAX_ADDRESSES]


async def _queue_received(ctx: StoreContext, conn: AsyncConnection[Any], rows: list[Any]) -> int:
    pending = [
        PendingEvent(
            message_key(r), r["account_id"], r["created_at"], received_data(r), r["created_at"]
        )
        for r in rows
    ]
    return await insert_events(ctx, conn, EMAIL_RECEIVED, pending)


def _params(**extra: Any) -> dict[str, Any]:
    return {"boxes": list(RECEIVING_MAILBOXES), "event": EMAIL_RECEIVED, **extra}


async def fan_out_messages(
    ctx: StoreContext, conn: AsyncConnection[Any], keys: Iterable[MessageKey]
) -> int:
    """Queue ``email.received`` for these messages (see ``Webhooks.fan_out_messages``)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return 0
    rows = await fetchall(
        conn,
        _RECEIVED + " AND (m.account_id, m.mailbox_id, m.uid) IN (SELECT * FROM"
        " unnest(%(accounts)s::bigint[], %(boxes_ids)s::bigint[], %(uids)s::bigint[]))",
        _params(
            accounts=[k[0] for k in keys],
            boxes_ids=[k[1] for k in keys],
            uids=[k[2] for k in keys],
        ),
    )
    return await _queue_received(ctx, conn, rows)


async def catch_up(ctx: StoreContext, window: float, batch: int) -> int:
    """Queue ``email.received`` for messages delivered in the last *window* seconds that were
    not turned into deliveries (see ``Webhooks.catch_up``); scans in id order, *batch* rows
    per transaction."""
    async with ctx.db.connection() as conn:
        start = await fetchone(
            conn,
            "SELECT min(m.id) AS id FROM messages m"
            " WHERE m.created_at >= now() - make_interval(secs => %s)"
            " AND EXISTS (SELECT 1 FROM webhooks w WHERE w.enabled AND %s = ANY(w.events))",
            (window, EMAIL_RECEIVED),
        )
    if start is None or start["id"] is None:
        return 0
    queued, after = 0, start["id"] - 1
    while True:
        async with ctx.db.transaction() as conn:
            rows = await fetchall(
                conn,
                _RECEIVED + " AND m.id > %(after)s ORDER BY m.id LIMIT %(batch)s",
                _params(after=after, batch=batch),
            )
            queued += await _queue_received(ctx, conn, rows)
        if len(rows) < batch:
            return queued
        after = rows[-1]["id"]
