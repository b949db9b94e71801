"""The outbound queue: messages waiting to be delivered to remote recipients.

:meth:`OutboundQueue.enqueue` takes an fsynced incoming file, hard-links it under
``mail/queue/``, fsyncs that directory, and only then commits one ``outbound_messages``
row and one ``outbound_queue`` entry per destination domain (the same pattern as
``Messages.deliver``).  A crash before the commit leaves only an unreferenced file under
``mail/queue/``, which :func:`sweep_queue_files` removes at start-up; a crash after it
leaves a complete queue entry.  The file is removed only once every entry of its message
is finished (:meth:`OutboundQueue.finish`); the outbound queue runner (``a3mail.outbound``,
through ``a3mail.store.outbound``) leases entries with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from a3mail.store.blobs import IncomingBlob, unique_name
from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.records import NotFound

QUEUE_ADDED = "queue.added"
QUEUE_DIR = "mail/queue"
STATES = ("queued", "sending", "sent", "failed", "bounced")
FINISHED = ("sent", "failed", "bounced")


@attrs.frozen
class QueueEntry:
    """One queue entry: a message for the recipients of one destination domain."""

    id: int
    message_id: int
    domain: str
    recipients: tuple[str, ...]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    leased_until: datetime | None
    leased_by: str | None
    created_at: datetime
    sender: str
    blob_path: str
    size: int
    skip_bytes: int


def destination_domain(recipient: str) -> str:
    """The part of an address after the last ``@``, lower-cased ("" if there is none)."""
    local, at, domain = recipient.rpartition("@")
    return domain.lower().rstrip(".") if at and local else ""


def group_by_domain(recipients: Iterable[str]) -> dict[str, list[str]]:
    """Recipients grouped by destination domain, each once, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for recipient in recipients:
        domain = destination_domain(recipient)
        if not domain:
            raise ValueError(f"recipient without a domain: {recipient!r}")
        group = groups.setdefault(domain, [])
        if recipient not in group:
            group.append(recipient)
    return groups


class OutboundQueue:
    """Queue messages for remote delivery and inspect the queue."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @property
    def directory(self) -> Path:
        """Where queued message files live."""
        return self.ctx.blobs.data_dir / QUEUE_DIR

    @deferred
    async def enqueue(
        self,
        blob: IncomingBlob,
        sender: str,
        recipients: Sequence[str],
        *,
        skip_bytes: int = 0,
        keep_source: bool = True,
        not_before: datetime | None = None,
    ) -> list[int]:
        """Queue *blob* from *sender* ("" = null sender) for remote *recipients*.

        Returns the new entry ids, one per destination domain.  *skip_bytes* leading bytes
        of the file (a Return-Path header written for local delivery) are not to be sent.
        The incoming file stays in ``mail/tmp`` unless *keep_source* is false.  With
        *not_before*, no delivery is attempted before that time (a scheduled send).
        """
        groups = group_by_domain(recipients)
        if not groups:
            raise ValueError("no recipients to queue")
        if not 0 <= skip_bytes <= blob.size:
            raise ValueError("skip_bytes outside the message")
        linked: str | None = None
        try:
            linked = await self.ctx.in_thread(self._link, blob.path)
            async with self.ctx.db.transaction() as conn:
                message = await fetchone(
                    conn,
                    "INSERT INTO outbound_messages (sender, blob_path, size, skip_bytes)"
                    " VALUES (%s, %s, %s, %s) RETURNING id",
                    (sender, linked, blob.size, skip_bytes),
                )
                ids: list[int] = []
                for domain, group in groups.items():
                    row = await fetchone(
                        conn,
                        "INSERT INTO outbound_queue (message_id, domain, recipients,"
                        " next_attempt_at) VALUES (%s, %s, %s, coalesce(%s::timestamptz, now()))"
                        " RETURNING id",
                        (message["id"], domain, group, not_before),
                    )
                    ids.append(int(row["id"]))
                await self.ctx.publish(
                    conn,
                    QUEUE_ADDED,
                    message_id=message["id"],
                    entries=ids,
                    recipients=sum(len(g) for g in groups.values()),
                    size=blob.size,
                )
        except BaseException:
            if linked is not None:
                await self.ctx.in_thread(self.ctx.blobs.remove, [linked])
            raise
        if not keep_source:
            await self.ctx.in_thread(self.ctx.blobs.remove_incoming, blob.path)
        return ids

    def _link(self, source: Path) -> str:
        """Hard-link *source* into ``mail/queue`` and fsync the directory (blocking)."""
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = unique_name()
        os.link(source, directory / name)
        rel = f"{QUEUE_DIR}/{name}"
        try:
            self.ctx.blobs.sync_dirs([rel])
        except BaseException:
            (directory / name).unlink(missing_ok=True)
            raise
        return rel

    @deferred
    async def get(self, entry_id: int) -> QueueEntry:
        """One entry with its message's sender and file; :class:`NotFound` otherwise."""
        row = await self.ctx.db.fetchone(f"{_SELECT} WHERE q.id = %s", (entry_id,))
        if row is None:
            raise NotFound(f"no such queue entry: {entry_id}")
        return _entry(row)

    @deferred
    async def list(
        self, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[QueueEntry]:
        """Entries (optionally in one state), oldest first."""
        where, params = ("", ()) if state is None else (" WHERE q.state = %s", (state,))
        rows = await self.ctx.db.fetchall(
            f"{_SELECT}{where} ORDER BY q.id LIMIT %s OFFSET %s", (*params, limit, offset)
        )
        return [_entry(r) for r in rows]

    @deferred
    async def counts(self) -> dict[str, int]:
        """How many entries are in each state (every state listed, 0 when none)."""
        rows = await self.ctx.db.fetchall(
            "SELECT state, count(*) AS n FROM outbound_queue GROUP BY state"
        )
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["state"]: int(r["n"]) for r in rows})
        return counts

    @deferred
    async def finish(self, entry_id: int, state: str, error: str | None = None) -> None:
        """Mark an entry finished (sent, failed or bounced); when it was its message's last
        unfinished entry, the message row goes and its file is removed after the commit."""
        if state not in FINISHED:
            raise ValueError(f"not a final state: {state!r}")
        remove: str | None = None
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(
                conn,
                "UPDATE outbound_queue SET state = %s, last_error = %s, leased_until = NULL,"
                " leased_by = NULL, updated_at = now() WHERE id = %s RETURNING message_id",
                (state, error, entry_id),
            )
            if row is None:
                raise NotFound(f"no such queue entry: {entry_id}")
            message = await fetchone(
                conn,
                "SELECT id, blob_path FROM outbound_messages WHERE id = %s FOR UPDATE",
                (row["message_id"],),
            )
            open_entries = await fetchall(
                conn,
                "SELECT id FROM outbound_queue WHERE message_id = %s AND state <> ALL(%s)",
                (message["id"], list(FINISHED)),
            )
            if not open_entries:
                await conn.execute("DELETE FROM outbound_messages WHERE id = %s", (message["id"],))
                remove = message["blob_path"]
        if remove is not None:
            await self.ctx.in_thread(self.ctx.blobs.remove, [remove])


_SELECT = (
    "SELECT q.id, q.message_id, q.domain, q.recipients, q.state, q.attempts,"
    " q.next_attempt_at, q.last_error, q.leased_until, q.leased_by, q.created_at,"
    " m.sender, m.blob_path, m.size, m.skip_bytes"
    " FROM outbound_queue q JOIN outbound_messages m ON m.id = q.message_id"
)


def _entry(row: dict[str, Any]) -> QueueEntry:
    return QueueEntry(**{**row, "recipients": tuple(row["recipients"])})


async def sweep_queue_files(ctx: StoreContext, grace: float) -> int:
    """Remove files under ``mail/queue`` that no queued message references (crash leftovers
    between the link and the commit), if older than *grace* seconds; returns how many."""
    directory = ctx.blobs.data_dir / QUEUE_DIR

    def names() -> list[str]:
        if not directory.is_dir():
            return []
        return [f"{QUEUE_DIR}/{p.name}" for p in directory.iterdir() if p.is_file()]

    on_disk = await ctx.in_thread(names)
    if not on_disk:
        return 0
    rows = await ctx.db.fetchall(
        "SELECT blob_path FROM outbound_messages WHERE blob_path = ANY(%s)", (on_disk,)
    )
    referenced = {r["blob_path"] for r in rows}
    stale = [p for p in on_disk if p not in referenced and ctx.blobs.age(p) >= grace]
    await ctx.in_thread(ctx.blobs.remove, stale)
    return len(stale)
