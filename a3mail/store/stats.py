"""Figures for the admin API's statistics, computed from the tables (never cached)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred

AUTH_SUCCESS = "auth.success"  # the audit event of a successful login (a3mail.auth.guard)


@attrs.frozen
class ServerTotals:
    """Totals over the whole store."""

    users_total: int
    domains_total: int
    storage_used: int
    messages_total: int
    messages_today: int


@attrs.frozen
class UserActivity:
    """One account's recent activity."""

    messages_today: int
    last_message_at: datetime | None
    last_login: datetime | None


class Stats:
    """Read-only aggregate queries."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def server(self, since: datetime) -> ServerTotals:
        """Users, domains, bytes and messages stored, and messages stored since *since*
        (e.g. today's midnight) that are still there."""
        row = await self.ctx.db.fetchone(
            "SELECT (SELECT count(*) FROM accounts) AS users_total,"
            " (SELECT count(*) FROM domains) AS domains_total,"
            " (SELECT coalesce(sum(used_bytes), 0) FROM accounts) AS storage_used,"
            " (SELECT coalesce(sum(message_count), 0) FROM accounts) AS messages_total,"
            " (SELECT count(*) FROM messages WHERE created_at >= %s) AS messages_today",
            (since,),
        )
        assert row is not None
        return ServerTotals(**{k: int(v) for k, v in row.items()})

    @deferred
    async def last_logins(self, addresses: Sequence[str]) -> dict[str, datetime]:
        """The time of each address's newest successful login in the audit log."""
        if not addresses:
            return {}
        rows = await self.ctx.db.fetchall(
            "SELECT a.address, (SELECT max(l.at) FROM audit_log l WHERE l.actor = a.address"
            " AND l.event_type = %s) AS at FROM unnest(%s::text[]) AS a(address)",
            (AUTH_SUCCESS, list(addresses)),
        )
        return {r["address"]: r["at"] for r in rows if r["at"] is not None}

    @deferred
    async def user_activity(self, account_id: int, address: str, since: datetime) -> UserActivity:
        """Messages stored since *since*, the newest message's arrival, the last login."""
        row = await self.ctx.db.fetchone(
            "SELECT (SELECT count(*) FROM messages WHERE account_id = %(id)s"
            " AND created_at >= %(since)s) AS messages_today,"
            " (SELECT max(created_at) FROM messages WHERE account_id = %(id)s)"
            " AS last_message_at,"
            " (SELECT max(at) FROM audit_log WHERE actor = %(address)s AND event_type = %(event)s)"
            " AS last_login",
            {"id": account_id, "since": since, "address": address, "event": AUTH_SUCCESS},
        )
        assert row is not None
        return UserActivity(int(row["messages_today"]), row["last_message_at"], row["last_login"])
