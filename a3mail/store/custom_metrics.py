"""Custom metrics posted through the operations API, kept so every process exports them.

A metric is a name (Prometheus syntax), a kind (``counter`` or ``gauge``) and one value per
label set.  Posting a counter adds to its value; posting a gauge replaces it.  A name keeps
the kind it was first posted with (:class:`~a3mail.store.records.Conflict` otherwise), and
the table holds at most :data:`MAX_SERIES` label sets in all
(:class:`~a3mail.store.records.LimitExceeded` past that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import attrs

from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred
from a3mail.store.records import Conflict, LimitExceeded, NotFound

KINDS = ("counter", "gauge")
#: Label sets kept over every custom metric.
MAX_SERIES = 1000


@attrs.frozen
class CustomSample:
    """One label set of a custom metric and its value."""

    name: str
    kind: str
    labels: dict[str, str]
    value: float
    updated_at: datetime


def _sample(row: Mapping[str, object]) -> CustomSample:
    labels = row["labels"]
    return CustomSample(
        name=str(row["name"]),
        kind=str(row["kind"]),
        labels=dict(labels) if isinstance(labels, dict) else {},
        value=float(row["value"]),  # type: ignore[arg-type]
        updated_at=row["updated_at"],  # type: ignore[arg-type]
    )


class CustomMetrics:
    """Set and read custom metrics."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def post(
        self, name: str, kind: str, value: float, labels: Mapping[str, str]
    ) -> CustomSample:
        """Add to a counter or set a gauge; returns the stored sample."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        async with self.ctx.db.transaction() as conn:
            # One writer per name at a time: the kind check and the series limit hold.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('custom_metric:' || %s))", (name,)
            )
            row = await fetchone(
                conn, "SELECT kind FROM custom_metrics WHERE name = %s LIMIT 1", (name,)
            )
            if row is not None and row["kind"] != kind:
                raise Conflict(f"metric {name} is a {row['kind']}, not a {kind}")
            encoded = json.dumps(dict(labels), sort_keys=True)
            exists = await fetchone(
                conn,
                "SELECT 1 AS x FROM custom_metrics WHERE name = %s AND labels = %s::jsonb",
                (name, encoded),
            )
            if exists is None:
                count = await fetchone(conn, "SELECT count(*) AS n FROM custom_metrics")
                if count is not None and int(count["n"]) >= MAX_SERIES:
                    raise LimitExceeded(f"at most {MAX_SERIES} custom metric series are kept")
            stored = await fetchone(
                conn,
                "INSERT INTO custom_metrics (name, labels, kind, value)"
                " VALUES (%s, %s::jsonb, %s, %s)"
                " ON CONFLICT (name, labels) DO UPDATE SET updated_at = now(), value ="
                " CASE WHEN custom_metrics.kind = 'counter'"
                " THEN custom_metrics.value + EXCLUDED.value ELSE EXCLUDED.value END"
                " RETURNING name, labels, kind, value, updated_at",
                (name, encoded, kind, value),
            )
        assert stored is not None
        return _sample(stored)

    @deferred
    async def get(self, name: str) -> list[CustomSample]:
        """Every label set of *name*; :class:`NotFound` if it was never posted."""
        rows = await self.ctx.db.fetchall(
            "SELECT name, labels, kind, value, updated_at FROM custom_metrics"
            " WHERE name = %s ORDER BY labels::text",
            (name,),
        )
        if not rows:
            raise NotFound(f"no such custom metric: {name}")
        return [_sample(row) for row in rows]

    @deferred
    async def all(self) -> list[CustomSample]:
        """Every custom metric sample (for /metrics)."""
        rows = await self.ctx.db.fetchall(
            "SELECT name, labels, kind, value, updated_at FROM custom_metrics"
            " ORDER BY name, labels::text"
        )
        return [_sample(row) for row in rows]
