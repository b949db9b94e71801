"""The audit log: logins, admin writes, key creation and revocation, blocks."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.records import AuditEntry, build

SEVERITIES = ("info", "warning", "critical")


class AuditLog:
    """Append to and query the audit log."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def record(
        self,
        event_type: str,
        *,
        severity: str = "info",
        actor: str | None = None,
        ip: str | None = None,
        target: str | None = None,
        success: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")
        await self.ctx.db.execute(
            "INSERT INTO audit_log (event_type, severity, actor, ip, target, success, details)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                event_type,
                severity,
                actor,
                ip,
                target,
                success,
                json.dumps(details or {}, default=str),
            ),
        )

    @deferred
    async def query(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        event_type: str | None = None,
        severity: str | None = None,
        actor: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and the total that match."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("at", ">=", start),
            ("at", "<", end),
            ("event_type", "=", event_type),
            ("severity", "=", severity),
            ("actor", "=", actor),
        ):
            if value is not None:
                clauses.append(f"{column} {op} %s")
                params.append(value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = await self.ctx.db.fetchall(
            f"SELECT *, count(*) OVER () AS total FROM audit_log{where}"
            " ORDER BY at DESC, id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = int(rows[0]["total"]) if rows else 0
        return [build(AuditEntry, r) for r in rows], total
