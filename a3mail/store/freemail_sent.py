"""The freemail API's mail: messages by their global id, and sent-mail records.

A send is queued held back (``enqueue(not_before=HOLD)``), then :meth:`FreemailSent.record`
writes its record and releases the queue entries (due now, or at the scheduled time) in
ONE transaction, so the queue runner can never finish an entry before its record exists;
from then on the trigger on ``outbound_queue`` keeps ``status`` up to date (queue rows go
away once finished).  Cancelling deletes the entries not being sent and, as the queue
does, the message row and its file once none is left.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
from psycopg import AsyncConnection

from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.queue import FINISHED, QUEUE_ADDED
from a3mail.store.records import MessageInfo, build

_INFO = (
    "m.id, m.mailbox_id, m.account_id, m.uid, m.modseq, m.flags, m.keywords, m.internal_date,"
    " m.size, m.blob_path, m.header_size, m.sent_date, m.subject, m.from_addr, m.to_addr,"
    " m.message_id, m.has_attachments, m.verification_code, m.preview"
)
_SENDER = "coalesce(m.parsed -> 'from' -> 0 ->> 'address', '') AS sender"
#: statuses a send can still leave (the queue trigger updates only these)
OPEN_STATUSES = ("queued", "scheduled")


@attrs.frozen
class SentRecord:
    """One message sent through the freemail API."""

    id: int
    account_id: int
    from_addr: str
    recipients: tuple[str, ...]
    subject: str
    html_content: str
    text_content: str
    status: str
    scheduled_at: datetime | None
    queue_message_id: int | None
    queue_entry_ids: tuple[int, ...]
    created_at: datetime


def _record(row: dict[str, Any]) -> SentRecord:
    return SentRecord(
        **{
            **row,
            "recipients": tuple(row["recipients"]),
            "queue_entry_ids": tuple(row["queue_entry_ids"]),
        }
    )


class FreemailSent:
    """Message lookups by id and the sent-mail records."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # -- received mail ----------------------------------------------------------------------

    @deferred
    async def message(self, message_id: int) -> MessageInfo | None:
        """The index entry of message *message_id* (any mailbox), or None."""
        row = await self.ctx.db.fetchone(
            f"SELECT {_INFO} FROM messages m WHERE m.id = %s", (message_id,)
        )
        return None if row is None else build(MessageInfo, row)

    @deferred
    async def messages(self, message_ids: Sequence[int]) -> builtins.list[tuple[MessageInfo, str]]:
        """Index entries of these messages (those that exist), newest first, each with the
        sender's bare address."""
        rows = await self.ctx.db.fetchall(
            f"SELECT {_INFO}, {_SENDER} FROM messages m WHERE m.id = ANY(%s) ORDER BY m.id DESC",
            (list(message_ids),),
        )
        return [(build(MessageInfo, r), r["sender"]) for r in rows]

    # -- sent mail --------------------------------------------------------------------------

    @deferred
    async def record(
        self,
        *,
        account_id: int,
        from_addr: str,
        recipients: Sequence[str],
        subject: str,
        html: str,
        text: str,
        entry_ids: Sequence[int],
        scheduled_at: datetime | None,
    ) -> SentRecord:
        """Record a send and release its held queue entries (due at *scheduled_at*, or now);
        with no entries (local recipients only) it is recorded as delivered."""
        async with self.ctx.db.transaction() as conn:
            message = None
            if entry_ids:
                message = await fetchone(
                    conn,
                    "SELECT message_id FROM outbound_queue WHERE id = %s",
                    (entry_ids[0],),
                )
            status = "delivered" if not entry_ids else "scheduled" if scheduled_at else "queued"
            row = await fetchone(
                conn,
                "INSERT INTO freemail_sent (account_id, from_addr, recipients, subject,"
                " html_content, text_content, status, scheduled_at, queue_message_id,"
                " queue_entry_ids) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (
                    account_id,
                    from_addr,
                    list(recipients),
                    subject,
                    html,
                    text,
                    status,
                    scheduled_at,
                    message["message_id"] if message else None,
                    list(entry_ids),
                ),
            )
            if entry_ids:
                await conn.execute(
                    "UPDATE outbound_queue SET next_attempt_at = coalesce(%s::timestamptz, now())"
                    " WHERE id = ANY(%s) AND state = 'queued'",
                    (scheduled_at, list(entry_ids)),
                )
                await self.ctx.publish(
                    conn, QUEUE_ADDED, message_id=row["queue_message_id"], entries=list(entry_ids)
                )
        return _record(row)

    @deferred
    async def get(self, sent_id: int) -> SentRecord | None:
        """One sent record, or None."""
        row = await self.ctx.db.fetchone("SELECT * FROM freemail_sent WHERE id = %s", (sent_id,))
        return None if row is None else _record(row)

    @deferred
    async def page(self, account_id: int, *, limit: int) -> builtins.list[SentRecord]:
        """The newest *limit* records sent from mailbox *account_id*."""
        rows = await self.ctx.db.fetchall(
            "SELECT * FROM freemail_sent WHERE account_id = %s ORDER BY id DESC LIMIT %s",
            (account_id, limit),
        )
        return [_record(r) for r in rows]

    @deferred
    async def delete(self, sent_id: int) -> bool:
        """Forget a sent record (a queued send goes on); False if there was none."""
        count = await self.ctx.db.execute("DELETE FROM freemail_sent WHERE id = %s", (sent_id,))
        return count > 0

    @deferred
    async def reschedule(self, sent_id: int, when: datetime) -> bool:
        """Move a send that has not started to *when*; False if it is past that point."""
        async with self.ctx.db.transaction() as conn:
            row = await _lock_open(conn, sent_id)
            if row is None:
                return False
            busy = await fetchone(
                conn,
                "SELECT count(*) FILTER (WHERE state <> 'queued') AS busy, count(*) AS n"
                " FROM outbound_queue WHERE id = ANY(%s)",
                (row["queue_entry_ids"],),
            )
            if busy["busy"] or not busy["n"]:
                return False
            await conn.execute(
                "UPDATE outbound_queue SET next_attempt_at = %s WHERE id = ANY(%s)",
                (when, row["queue_entry_ids"]),
            )
            await conn.execute(
                "UPDATE freemail_sent SET scheduled_at = %s, status = 'scheduled' WHERE id = %s",
                (when, sent_id),
            )
        return True

    @deferred
    async def cancel(self, sent_id: int) -> bool:
        """Cancel a send none of whose entries has started; False otherwise."""
        remove: str | None = None
        async with self.ctx.db.transaction() as conn:
            row = await _lock_open(conn, sent_id)
            if row is None:
                return False
            entries = await fetchall(
                conn,
                "SELECT id, state FROM outbound_queue WHERE id = ANY(%s) FOR UPDATE",
                (row["queue_entry_ids"],),
            )
            if not entries or any(e["state"] != "queued" for e in entries):
                return False
            await conn.execute(
                "DELETE FROM outbound_queue WHERE id = ANY(%s)", (row["queue_entry_ids"],)
            )
            message = await fetchone(
                conn,
                "SELECT id, blob_path FROM outbound_messages WHERE id = %s FOR UPDATE",
                (row["queue_message_id"],),
            )
            if message is not None:
                left = await fetchone(
                    conn,
                    "SELECT count(*) AS n FROM outbound_queue WHERE message_id = %s"
                    " AND state <> ALL(%s)",
                    (message["id"], list(FINISHED)),
                )
                if not left["n"]:
                    await conn.execute(
                        "DELETE FROM outbound_messages WHERE id = %s", (message["id"],)
                    )
                    remove = message["blob_path"]
            await conn.execute(
                "UPDATE freemail_sent SET status = 'canceled' WHERE id = %s", (sent_id,)
            )
        if remove is not None:
            await self.ctx.in_thread(self.ctx.blobs.remove, [remove])
        return True


async def _lock_open(conn: AsyncConnection[Any], sent_id: int) -> dict[str, Any] | None:
    """Lock the sent record *sent_id* if it is still open and has queue entries (its row),
    else None."""
    row: dict[str, Any] | None = await fetchone(
        conn,
        "SELECT * FROM freemail_sent WHERE id = %s AND status = ANY(%s) FOR UPDATE",
        (sent_id, list(OPEN_STATUSES)),
    )
    if row is None or not row["queue_entry_ids"]:
        return None
    return row
