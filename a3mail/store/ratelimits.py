"""Shared rate-limit counters: fixed windows per bucket, added to in batches.

The HTTP rate limiter counts requests in memory and calls :meth:`RateLimitCounters.add`
about once a second with what it counted since; the statement adds those deltas and
returns the totals every process has recorded, so that several a3mail processes share one
limit without a database write per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred

_ADD = (
    "WITH d(bucket, delta) AS (SELECT * FROM unnest(%(buckets)s::text[], %(deltas)s::bigint[])),"
    " added AS (INSERT INTO http_rate_limits AS r (bucket, window_start, count)"
    " SELECT bucket, %(window)s, delta FROM d WHERE delta > 0"
    " ON CONFLICT (bucket, window_start) DO UPDATE SET count = r.count + EXCLUDED.count"
    " RETURNING r.bucket, r.count)"
    " SELECT bucket, count FROM added"
    " UNION ALL SELECT r.bucket, r.count FROM http_rate_limits r JOIN d ON d.bucket = r.bucket"
    " WHERE d.delta = 0 AND r.window_start = %(window)s"
)


class RateLimitCounters:
    """Request counts per (bucket, window start) in ``http_rate_limits``."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def add(
        self, window: int, deltas: Mapping[str, int], watch: Sequence[str] = ()
    ) -> dict[str, int]:
        """Add *deltas* to the buckets' counts for *window* (one statement); return the new
        totals of those buckets and the current totals of the *watch* buckets."""
        buckets = [*deltas, *(b for b in watch if b not in deltas)]
        if not buckets:
            return {}
        values = [max(0, int(deltas.get(b, 0))) for b in buckets]
        rows = await self.ctx.db.fetchall(
            _ADD, {"buckets": buckets, "deltas": values, "window": window}
        )
        return {r["bucket"]: int(r["count"]) for r in rows}

    @deferred
    async def read(self, window: int, bucket: str) -> int:
        """The recorded count of one bucket in *window* (0 if none)."""
        row = await self.ctx.db.fetchone(
            "SELECT count FROM http_rate_limits WHERE bucket = %s AND window_start = %s",
            (bucket, window),
        )
        return int(row["count"]) if row else 0

    @deferred
    async def prune(self, before: int) -> int:
        """Remove the counts of windows that started before *before*; returns how many."""
        return await self.ctx.db.execute(
            "DELETE FROM http_rate_limits WHERE window_start < %s", (before,)
        )
