"""Administration of the outbound queue (``store.queue`` holds the queue itself).

The A3Mailer-style API speaks of named queues; over a3mail's one queue table they are views
of the entries' states:

========  =======================================================================
incoming  always empty: inbound mail is delivered into mailboxes before it is accepted
outgoing  entries waiting for their first attempt, and entries being sent now
retry     entries waiting for another attempt after a temporary failure (deferred)
bounce    entries that failed for good (``failed``) or were bounced (``bounced``)
========  =======================================================================

Entries in the ``sent`` state (kept until their message's other domains are finished) are
in no queue.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import attrs

from a3mail.store.context import StoreContext, fetchall
from a3mail.store.db import deferred
from a3mail.store.queue import FINISHED, STATES, QueueEntry

QUEUE_NAMES = ("incoming", "outgoing", "retry", "bounce")

# queue name -> SQL condition on outbound_queue q (never from client input).
_CONDITIONS: dict[str, str] = {
    "incoming": "false",
    "outgoing": "((q.state = 'queued' AND q.attempts = 0) OR q.state = 'sending')",
    "retry": "(q.state = 'queued' AND q.attempts > 0)",
    "bounce": "q.state IN ('failed', 'bounced')",
    "all": "q.state <> 'sent'",
}
_LEASED = "(q.state = 'sending' OR (q.leased_until IS NOT NULL AND q.leased_until > now()))"
_SELECT = (
    "SELECT q.id, q.message_id, q.domain, q.recipients, q.state, q.attempts,"
    " q.next_attempt_at, q.last_error, q.leased_until, q.leased_by, q.created_at,"
    " m.sender, m.blob_path, m.size, m.skip_bytes, count(*) OVER () AS total"
    " FROM outbound_queue q JOIN outbound_messages m ON m.id = q.message_id"
)


@attrs.frozen
class QueueSummary:
    """Entries per state and per named queue."""

    states: dict[str, int]
    queues: dict[str, int]

    @property
    def total(self) -> int:
        """Entries in some queue (everything not yet sent)."""
        return sum(self.queues.values())


@attrs.frozen
class PurgeResult:
    """What a purge removed, and the entries it left because they are being sent."""

    removed: int
    skipped: int


def queue_of(entry: QueueEntry) -> str | None:
    """The named queue an entry is in (None for a sent entry)."""
    if entry.state == "queued":
        return "outgoing" if entry.attempts == 0 else "retry"
    if entry.state == "sending":
        return "outgoing"
    if entry.state in ("failed", "bounced"):
        return "bounce"
    return None


@attrs.frozen
class QueueBacklog:
    """Entries per named queue and the age of the oldest entry waiting to be sent."""

    queues: dict[str, int]
    oldest_age: float | None  # seconds; None when nothing waits


class QueueAdmin:
    """Summaries, listings, retries and purges of the outbound queue."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def backlog(self) -> QueueBacklog:
        """Entries per named queue and the oldest waiting entry's age (for metrics)."""
        rows = await self.ctx.db.fetchall(
            "SELECT state, attempts > 0 AS retried, count(*) AS n,"
            " extract(epoch FROM now() - min(created_at))::float8 AS age"
            " FROM outbound_queue GROUP BY 1, 2"
        )
        queues = dict.fromkeys(QUEUE_NAMES, 0)
        ages = []
        for row in rows:
            if row["state"] not in ("queued", "sending"):
                if row["state"] in ("failed", "bounced"):
                    queues["bounce"] += int(row["n"])
                continue
            name = "retry" if row["state"] == "queued" and row["retried"] else "outgoing"
            queues[name] += int(row["n"])
            ages.append(max(0.0, float(row["age"])))
        return QueueBacklog(queues, max(ages) if ages else None)

    @deferred
    async def summary(self) -> QueueSummary:
        """Counts per state and per named queue."""
        rows = await self.ctx.db.fetchall(
            "SELECT state, attempts > 0 AS retried, count(*) AS n FROM outbound_queue GROUP BY 1, 2"
        )
        states = dict.fromkeys(STATES, 0)
        queues = dict.fromkeys(QUEUE_NAMES, 0)
        for row in rows:
            n = int(row["n"])
            states[row["state"]] = states.get(row["state"], 0) + n
            if row["state"] == "queued":
                queues["retry" if row["retried"] else "outgoing"] += n
            elif row["state"] == "sending":
                queues["outgoing"] += n
            elif row["state"] in ("failed", "bounced"):
                queues["bounce"] += n
        return QueueSummary(states, queues)

    @deferred
    async def entries(
        self, *, queue: str = "all", limit: int = 20, offset: int = 0
    ) -> tuple[builtins.list[QueueEntry], int]:
        """A page of entries of one named queue (or ``all``), oldest first, and the total."""
        condition = _CONDITIONS[queue]
        rows = await self.ctx.db.fetchall(
            f"{_SELECT} WHERE {condition} ORDER BY q.id LIMIT %s OFFSET %s", (limit, offset)
        )
        total = int(rows[0]["total"]) if rows else 0
        if not rows and offset:
            counted = await self.ctx.db.fetchone(
                f"SELECT count(*) AS n FROM outbound_queue q WHERE {condition}"
            )
            total = int(counted["n"]) if counted else 0
        entries = [
            QueueEntry(
                **{
                    k: v
                    for k, v in {**r, "recipients": tuple(r["recipients"])}.items()
                    if k != "total"
                }
            )
            for r in rows
        ]
        return entries, total

    @deferred
    async def retry(self, ids: Sequence[int] | None = None, include_failed: bool = False) -> int:
        """Make waiting entries due now (and, with *include_failed*, queue failed and bounced
        ones again); limited to *ids* if given.  Returns how many entries changed."""
        condition = "(q.state = 'queued' AND q.next_attempt_at > now())"
        if include_failed:
            condition = f"({condition} OR q.state IN ('failed', 'bounced'))"
        params: list[Any] = []
        if ids is not None:
            condition += " AND q.id = ANY(%s)"
            params.append(list(ids))
        return await self.ctx.db.execute(
            "UPDATE outbound_queue q SET state = 'queued', next_attempt_at = now(),"
            f" last_error = NULL, updated_at = now() WHERE {condition} AND NOT {_LEASED}",
            params,
        )

    @deferred
    async def purge(self, queue: str) -> PurgeResult:
        """Remove the entries of a named queue (or ``all``) that are not being sent; a
        message with no unfinished entry left goes too, and its file after the commit."""
        condition = _CONDITIONS[queue]
        async with self.ctx.db.transaction() as conn:
            skipped_rows = await fetchall(
                conn,
                f"SELECT count(*) AS n FROM outbound_queue q WHERE {condition} AND {_LEASED}",
            )
            removed = await fetchall(
                conn,
                f"DELETE FROM outbound_queue q WHERE {condition} AND NOT {_LEASED}"
                " RETURNING q.message_id",
            )
            message_ids = sorted({r["message_id"] for r in removed})
            gone = await fetchall(
                conn,
                "DELETE FROM outbound_messages m WHERE m.id = ANY(%s) AND NOT EXISTS"
                " (SELECT 1 FROM outbound_queue q WHERE q.message_id = m.id"
                " AND q.state <> ALL(%s)) RETURNING m.blob_path",
                (message_ids, list(FINISHED)),
            )
        await self.ctx.in_thread(self.ctx.blobs.remove, [r["blob_path"] for r in gone])
        return PurgeResult(len(removed), int(skipped_rows[0]["n"]) if skipped_rows else 0)
