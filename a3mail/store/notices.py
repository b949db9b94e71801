"""Delivery status notices waiting to be sent (the ``outbound_notices`` table).

The queue runner decides a bounce or a delay warning when it records an attempt; the notice
is inserted by :func:`insert_notice` inside that same transaction
(``OutboundDelivery.record(..., notices=...)``), leased to the recording worker.  The
runner then sends it and calls :meth:`OutboundNotices.done`.  If the process dies in
between, the lease expires and :meth:`OutboundNotices.lease` hands the notice to the next
runner that looks, so a bounce is never lost (it may, rarely, be sent twice).
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

import attrs

from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred

ACTIONS = ("failed", "delayed")


@attrs.frozen
class NoticeRecipient:
    """One recipient line of a notice: the final reply it got."""

    recipient: str
    code: int
    reply: str
    remote_mta: str = ""


@attrs.frozen
class NoticeDraft:
    """A notice to record with an attempt: *action* for *recipients*, to *sender*."""

    entry_id: int
    action: str
    sender: str
    recipients: tuple[NoticeRecipient, ...]
    headers: bytes
    arrival: datetime

    def __attrs_post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown notice action: {self.action!r}")
        if not self.sender:
            raise ValueError("a notice is never sent to the null sender")
        if not self.recipients:
            raise ValueError("a notice needs at least one recipient")


@attrs.frozen
class Notice:
    """A recorded notice (with its row id), leased to the worker that holds it."""

    id: int
    draft: NoticeDraft


async def insert_notice(conn: Any, draft: NoticeDraft, worker: str, lease_seconds: float) -> int:
    """Insert *draft* on *conn* (the caller's transaction), leased to *worker*."""
    recipients = [attrs.asdict(r) for r in draft.recipients]
    row = await fetchone(
        conn,
        "INSERT INTO outbound_notices"
        " (entry_id, action, sender, recipients, headers, arrival, leased_by, leased_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING id",
        (
            draft.entry_id,
            draft.action,
            draft.sender,
            json.dumps(recipients),
            draft.headers,
            draft.arrival,
            worker,
            lease_seconds,
        ),
    )
    return int(row["id"])


def _notice(row: dict[str, Any]) -> Notice:
    recipients = tuple(NoticeRecipient(**r) for r in row["recipients"])
    draft = NoticeDraft(
        row["entry_id"],
        row["action"],
        row["sender"],
        recipients,
        bytes(row["headers"]),
        row["arrival"],
    )
    return Notice(int(row["id"]), draft)


class OutboundNotices:
    """Leasing and completing recorded notices."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def lease(self, worker: str, limit: int, lease_seconds: float) -> builtins.list[Notice]:
        """Lease up to *limit* notices nobody holds (never leased, or the lease expired),
        oldest first, for *worker*."""
        rows = await self.ctx.db.fetchall(
            "WITH due AS (SELECT id FROM outbound_notices"
            " WHERE leased_until IS NULL OR leased_until < now()"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " UPDATE outbound_notices n SET leased_by = %s,"
            " leased_until = now() + make_interval(secs => %s)"
            " FROM due WHERE n.id = due.id"
            " RETURNING n.id, n.entry_id, n.action, n.sender, n.recipients, n.headers, n.arrival",
            (limit, worker, lease_seconds),
        )
        return sorted((_notice(r) for r in rows), key=lambda n: n.id)

    @deferred
    async def done(self, notice_id: int) -> None:
        """The notice was sent: forget it."""
        await self.ctx.db.execute("DELETE FROM outbound_notices WHERE id = %s", (notice_id,))

    @deferred
    async def release(self, notice_id: int, worker: str) -> None:
        """Give a notice back (sending it failed): any runner may take it at once."""
        await self.ctx.db.execute(
            "UPDATE outbound_notices SET leased_by = NULL, leased_until = NULL"
            " WHERE id = %s AND leased_by = %s",
            (notice_id, worker),
        )

    @deferred
    async def count(self) -> int:
        """How many notices wait to be sent."""
        row = await self.ctx.db.fetchone("SELECT count(*) AS n FROM outbound_notices")
        return int(row["n"]) if row else 0


__all__ = [
    "Notice",
    "NoticeDraft",
    "NoticeRecipient",
    "OutboundNotices",
    "insert_notice",
]
