"""The queue runner's side of the outbound queue: leases, attempt results, completion.

Entries are leased with ``FOR UPDATE SKIP LOCKED``: a worker (any a3mail process) marks due
``queued`` entries ``sending`` with ``leased_by`` = itself and ``leased_until`` = now + the
lease time.  An entry whose lease expired while ``sending`` (its process died) is due again
and is taken over by the next lease.  :meth:`OutboundDelivery.record` stores one attempt's
per-recipient results: finished recipients (delivered, or failed for good) are added to
``done_recipients``; when none is left the entry is finished (``sent``, or ``failed`` if a
recipient failed), else it goes back to ``queued`` for *retry_at*.  When the last unfinished
entry of a message is finished the message row is deleted in the same transaction and its
file under ``mail/queue`` is removed only after the commit.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.notices import NoticeDraft, insert_notice
from a3mail.store.queue import FINISHED, QueueEntry

RESULT_STATUSES = ("sent", "deferred", "failed")


@attrs.frozen
class LeasedEntry:
    """A queue entry leased by one worker, with the recipients already finished."""

    entry: QueueEntry
    done: tuple[str, ...]
    delay_warned: bool

    @property
    def pending(self) -> tuple[str, ...]:
        """The recipients this attempt is for."""
        return tuple(r for r in self.entry.recipients if r not in self.done)


@attrs.frozen
class RecipientResult:
    """The outcome of one recipient in one attempt."""

    recipient: str
    status: str  # one of RESULT_STATUSES
    code: int
    reply: str = ""
    remote_mta: str = ""


@attrs.frozen
class RecordOutcome:
    """What :meth:`OutboundDelivery.record` did: the entry's new state, and whether this
    was the worker's lease (False: the lease was lost, nothing recorded)."""

    state: str
    recorded: bool
    notice_ids: tuple[int, ...] = ()


_LEASE_COLUMNS = (
    "q.id, q.message_id, q.domain, q.recipients, q.state, q.attempts,"
    " q.next_attempt_at, q.last_error, q.leased_until, q.leased_by, q.created_at,"
    " m.sender, m.blob_path, m.size, m.skip_bytes, q.done_recipients, q.delay_warned"
)


class OutboundDelivery:
    """Leasing due entries and recording delivery attempts."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def lease(self, worker: str, limit: int, lease_seconds: float) -> list[LeasedEntry]:
        """Lease up to *limit* due entries (queued and due, or sending with an expired lease)
        for *worker* for *lease_seconds*; entries other workers hold are skipped."""
        async with self.ctx.db.transaction() as conn:
            rows = await fetchall(
                conn,
                "WITH due AS (SELECT id FROM outbound_queue"
                " WHERE (state = 'queued' AND next_attempt_at <= now())"
                " OR (state = 'sending' AND (leased_until IS NULL OR leased_until < now()))"
                " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE outbound_queue q SET state = 'sending', leased_by = %s,"
                " leased_until = now() + make_interval(secs => %s), updated_at = now()"
                " FROM due WHERE q.id = due.id RETURNING q.id",
                (limit, worker, lease_seconds),
            )
            if not rows:
                return []
            leased = await fetchall(
                conn,
                f"SELECT {_LEASE_COLUMNS} FROM outbound_queue q"
                " JOIN outbound_messages m ON m.id = q.message_id"
                " WHERE q.id = ANY(%s) ORDER BY q.next_attempt_at, q.id",
                ([r["id"] for r in rows],),
            )
        return [_leased(r) for r in leased]

    @deferred
    async def extend(self, entry_id: int, worker: str, lease_seconds: float) -> bool:
        """Extend *worker*'s lease of an entry; False when the lease is no longer its own."""
        count = await self.ctx.db.execute(
            "UPDATE outbound_queue SET leased_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND leased_by = %s AND state = 'sending'",
            (lease_seconds, entry_id, worker),
        )
        return count > 0

    @deferred
    async def release(self, entry_id: int, worker: str) -> None:
        """Give a leased entry back, due now, without counting an attempt (shutdown)."""
        await self.ctx.db.execute(
            "UPDATE outbound_queue SET state = 'queued', leased_by = NULL, leased_until = NULL,"
            " updated_at = now() WHERE id = %s AND leased_by = %s AND state = 'sending'",
            (entry_id, worker),
        )

    @deferred
    async def record(
        self,
        entry_id: int,
        worker: str,
        results: Sequence[RecipientResult],
        retry_at: datetime | None,
        error: str | None = None,
        *,
        notices: Sequence[NoticeDraft] = (),
        notice_lease: float = 600.0,
    ) -> RecordOutcome:
        """Record one attempt of *worker*'s leased entry: per-recipient *results*, finished
        recipients, the new state (finished, or queued again for *retry_at*), and for a
        finished message, the removal of its row (its file goes after the commit).

        *notices* (bounces, delay warnings) are inserted in the same transaction, leased to
        *worker* for *notice_lease* seconds; their ids are in the outcome.  A ``delayed``
        notice also marks the entry as warned."""
        for result in results:
            if result.status not in RESULT_STATUSES:
                raise ValueError(f"unknown result status: {result.status!r}")
        remove: str | None = None
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(
                conn,
                "SELECT id, message_id, recipients, done_recipients, state FROM outbound_queue"
                " WHERE id = %s AND leased_by = %s AND state = 'sending' FOR UPDATE",
                (entry_id, worker),
            )
            if row is None:
                current = await fetchone(
                    conn, "SELECT state FROM outbound_queue WHERE id = %s", (entry_id,)
                )
                return RecordOutcome(current["state"] if current else "gone", False)
            notice_ids = [await insert_notice(conn, n, worker, notice_lease) for n in notices]
            if any(n.action == "delayed" for n in notices):
                await conn.execute(
                    "UPDATE outbound_queue SET delay_warned = true WHERE id = %s", (entry_id,)
                )
            for result in results:
                await conn.execute(
                    "INSERT INTO outbound_results"
                    " (entry_id, recipient, status, code, reply, remote_mta)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        entry_id,
                        result.recipient,
                        result.status,
                        result.code,
                        result.reply[:2000],
                        result.remote_mta,
                    ),
                )
            done = list(row["done_recipients"])
            done += [
                r.recipient for r in results if r.status != "deferred" and r.recipient not in done
            ]
            pending = [r for r in row["recipients"] if r not in done]
            if not pending or retry_at is None:
                failed = await fetchone(
                    conn,
                    "SELECT count(*) AS n FROM outbound_results WHERE entry_id = %s"
                    " AND status = 'failed'",
                    (entry_id,),
                )
                state = "failed" if (failed and failed["n"]) or pending else "sent"
                await conn.execute(
                    "UPDATE outbound_queue SET state = %s, done_recipients = %s,"
                    " attempts = attempts + 1, last_error = %s, leased_by = NULL,"
                    " leased_until = NULL, updated_at = now() WHERE id = %s",
                    (state, done, error, entry_id),
                )
                remove = await _drop_finished_message(conn, row["message_id"])
            else:
                state = "queued"
                await conn.execute(
                    "UPDATE outbound_queue SET state = 'queued', done_recipients = %s,"
                    " attempts = attempts + 1, next_attempt_at = %s, last_error = %s,"
                    " leased_by = NULL, leased_until = NULL, updated_at = now() WHERE id = %s",
                    (done, retry_at, error, entry_id),
                )
        if remove is not None:
            await self.ctx.in_thread(self.ctx.blobs.remove, [remove])
        return RecordOutcome(state, True, tuple(notice_ids))

    @deferred
    async def delete(self, ids: Sequence[int]) -> int:
        """Delete these entries unless being sent; a message left without unfinished
        entries goes too, its file after the commit.  Returns how many entries went."""
        remove: list[str] = []
        async with self.ctx.db.transaction() as conn:
            rows = await fetchall(
                conn,
                "DELETE FROM outbound_queue WHERE id = ANY(%s) AND state <> 'sending'"
                " RETURNING message_id",
                (list(ids),),
            )
            for message_id in sorted({r["message_id"] for r in rows}):
                path = await _drop_finished_message(conn, message_id)
                if path is not None:
                    remove.append(path)
        if remove:
            await self.ctx.in_thread(self.ctx.blobs.remove, remove)
        return len(rows)

    @deferred
    async def mark_delay_warned(self, entry_id: int) -> bool:
        """Note that the delay warning of an entry was sent; False if it already had been."""
        count = await self.ctx.db.execute(
            "UPDATE outbound_queue SET delay_warned = true WHERE id = %s AND NOT delay_warned",
            (entry_id,),
        )
        return count > 0

    @deferred
    async def results(self, entry_id: int) -> builtins.list[dict[str, Any]]:
        """The recorded per-recipient results of an entry, oldest first."""
        return await self.ctx.db.fetchall(
            "SELECT recipient, status, code, reply, remote_mta, created_at"
            " FROM outbound_results WHERE entry_id = %s ORDER BY id",
            (entry_id,),
        )

    @deferred
    async def open_message(self, blob_path: str, skip_bytes: int) -> Any:
        """A queued message's file opened for reading at its first byte to send (opened in a
        worker thread; the caller streams it and closes it)."""

        def open_at() -> Any:
            file = open(self.ctx.blobs.data_dir / blob_path, "rb")  # noqa: SIM115
            file.seek(skip_bytes)
            return file

        return await self.ctx.in_thread(open_at)

    @deferred
    async def read_message(self, blob_path: str, skip_bytes: int, limit: int) -> bytes:
        """The first *limit* bytes a queued message sends (after *skip_bytes*), e.g. to
        copy its headers into a bounce; read in a worker thread."""

        def read() -> bytes:
            with open(self.ctx.blobs.data_dir / blob_path, "rb") as file:
                file.seek(skip_bytes)
                return file.read(limit)

        return await self.ctx.in_thread(read)


async def _drop_finished_message(conn: Any, message_id: int) -> str | None:
    """Delete a message row whose entries are all finished; returns its file to remove."""
    message = await fetchone(
        conn,
        "SELECT id, blob_path FROM outbound_messages WHERE id = %s FOR UPDATE",
        (message_id,),
    )
    if message is None:
        return None
    open_entries = await fetchall(
        conn,
        "SELECT id FROM outbound_queue WHERE message_id = %s AND state <> ALL(%s)",
        (message_id, list(FINISHED)),
    )
    if open_entries:
        return None
    await conn.execute("DELETE FROM outbound_messages WHERE id = %s", (message_id,))
    return str(message["blob_path"])


def _leased(row: dict[str, Any]) -> LeasedEntry:
    done = tuple(row.pop("done_recipients"))
    warned = bool(row.pop("delay_warned"))
    entry = QueueEntry(**{**row, "recipients": tuple(row["recipients"])})
    return LeasedEntry(entry, done, warned)
