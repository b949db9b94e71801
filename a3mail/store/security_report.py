"""Security reports over the audit log: filtered pages by category, and the overview figures.

Audit event types are grouped in categories (the ``event_type`` the security API shows):

- ``authentication``: ``auth.*`` (login successes and failures of every protocol);
- ``api_key``: ``api_key.*`` (key creation and revocation);
- ``security``: ``ip.*`` and ``security.*`` (blocks, unblocks, automatic blocks, settings);
- ``admin``: every other event (admin writes: users, domains, queue, webhooks, reloads...).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.records import AuditEntry, build

CATEGORY_PATTERNS: dict[str, tuple[str, ...]] = {
    "authentication": ("auth.%",),
    "api_key": ("api_key.%",),
    "security": ("ip.%", "security.%"),
}
CATEGORIES = (*CATEGORY_PATTERNS, "admin")
_OTHER = tuple(p for patterns in CATEGORY_PATTERNS.values() for p in patterns)


def category_of(event_type: str) -> str:
    """The category of an audit event type."""
    for category, patterns in CATEGORY_PATTERNS.items():
        if any(event_type.startswith(p.rstrip("%")) for p in patterns):
            return category
    return "admin"


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@attrs.frozen
class OffendingAddress:
    """An address with failed logins in the period."""

    ip: str
    failures: int
    last_seen: datetime
    users: int  # distinct user names tried


@attrs.frozen
class SecurityFigures:
    """What the overview is computed from (periods end now)."""

    failed_logins_24h: int
    successful_logins_24h: int
    auto_blocks_24h: int
    blocked_now: int
    blocked_automatic_now: int
    attacking_addresses_1h: int  # addresses with failed logins in the last hour, not blocked
    security_events: dict[str, int]  # warning/critical entries: last_24h, last_7d, last_30d
    top_offenders: list[OffendingAddress]


class SecurityReport:
    """Read-only queries over ``audit_log`` and ``ip_blocks`` for the security API."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def audit_page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        category: str | None = None,
        event_type: str | None = None,
        severity: str | None = None,
        user: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and the total that match.

        *category* is one of :data:`CATEGORIES`; *event_type* an exact type; *user* matches
        the actor exactly, or an API key's owner (actor ``"key_... (user)"``).
        """
        clauses: list[str] = []
        params: list[Any] = []
        for condition, value in (
            ("at >= %s", start),
            ("at < %s", end),
            ("event_type = %s", event_type),
            ("severity = %s", severity),
        ):
            if value is not None:
                clauses.append(condition)
                params.append(value)
        if category is not None:
            patterns: Sequence[str] = CATEGORY_PATTERNS.get(category, ())
            if category == "admin":
                clauses.append("NOT (event_type LIKE ANY(%s))")
                params.append(list(_OTHER))
            else:
                clauses.append("event_type LIKE ANY(%s)")
                params.append(list(patterns))
        if user is not None:
            clauses.append("(actor = %s OR actor LIKE %s)")
            params.extend([user, f"% ({_like(user)})"])
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = await self.ctx.db.fetchall(
            f"SELECT *, count(*) OVER () AS total FROM audit_log{where}"
            " ORDER BY at DESC, id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        if rows:
            total = int(rows[0]["total"])
        elif offset:
            counted = await self.ctx.db.fetchone(
                f"SELECT count(*) AS n FROM audit_log{where}", params
            )
            total = int(counted["n"]) if counted else 0
        else:
            total = 0
        return [build(AuditEntry, r) for r in rows], total

    @deferred
    async def figures(self, top: int = 10) -> SecurityFigures:
        """The overview's figures, measured now."""
        day = "at > now() - interval '1 day'"
        counts = await self.ctx.db.fetchone(
            "SELECT"
            f" count(*) FILTER (WHERE event_type = 'auth.failure' AND {day}) AS failed,"
            f" count(*) FILTER (WHERE event_type = 'auth.success' AND {day}) AS succeeded,"
            f" count(*) FILTER (WHERE event_type = 'ip.auto_block' AND {day}) AS auto_blocks,"
            f" count(*) FILTER (WHERE severity <> 'info' AND {day}) AS d1,"
            " count(*) FILTER (WHERE severity <> 'info' AND at > now() - interval '7 days') AS d7,"
            " count(*) FILTER (WHERE severity <> 'info') AS d30"
            " FROM audit_log WHERE at > now() - interval '30 days'"
        )
        blocks = await self.ctx.db.fetchone(
            "SELECT count(*) AS n, count(*) FILTER (WHERE automatic) AS automatic"
            " FROM ip_blocks WHERE expires_at IS NULL OR expires_at > now()"
        )
        attacking = await self.ctx.db.fetchone(
            "SELECT count(DISTINCT ip) AS n FROM audit_log a"
            " WHERE event_type = 'auth.failure' AND at > now() - interval '1 hour'"
            " AND ip IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ip_blocks b"
            " WHERE b.network >>= a3mail_try_inet(a.ip)"
            " AND (b.expires_at IS NULL OR b.expires_at > now()))"
        )
        offenders = await self.ctx.db.fetchall(
            "SELECT ip, count(*) AS failures, max(at) AS last_seen,"
            " count(DISTINCT actor) AS users FROM audit_log"
            " WHERE event_type = 'auth.failure' AND at > now() - interval '1 day'"
            " AND ip IS NOT NULL GROUP BY ip ORDER BY failures DESC, last_seen DESC LIMIT %s",
            (top,),
        )
        assert counts is not None and blocks is not None and attacking is not None
        return SecurityFigures(
            failed_logins_24h=int(counts["failed"]),
            successful_logins_24h=int(counts["succeeded"]),
            auto_blocks_24h=int(counts["auto_blocks"]),
            blocked_now=int(blocks["n"]),
            blocked_automatic_now=int(blocks["automatic"]),
            attacking_addresses_1h=int(attacking["n"]),
            security_events={
                "last_24h": int(counts["d1"]),
                "last_7d": int(counts["d7"]),
                "last_30d": int(counts["d30"]),
            },
            top_offenders=[
                OffendingAddress(r["ip"], int(r["failures"]), r["last_seen"], int(r["users"]))
                for r in offenders
            ],
        )
