"""Security settings changed at run time (table ``security_settings``), e.g. rate limits.

A row overrides the configuration file's values for every a3mail process.  A change is
announced on the bus (``security.settings``) when it commits; ``cached`` is this process's
copy, read on every HTTP request, kept current by the security service (bus events and a
periodic reload) and by :meth:`put` itself.
"""

from __future__ import annotations

import json
from typing import Any

from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred

SETTINGS_CHANGED = "security.settings"
RATE_LIMITS = "rate_limits"


class SecuritySettings:
    """Named JSON settings shared through PostgreSQL, with this process's cached copy."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.cached: dict[str, Any] = {}

    @deferred
    async def get(self, name: str) -> dict[str, Any] | None:
        """The stored value of *name* (None if never set); refreshes the cache."""
        row = await self.ctx.db.fetchone(
            "SELECT value FROM security_settings WHERE name = %s", (name,)
        )
        value = None if row is None else dict(row["value"])
        self._cache(name, value)
        return value

    @deferred
    async def put(self, name: str, value: dict[str, Any], updated_by: str | None = None) -> None:
        """Store *value* as *name* and announce the change."""
        async with self.ctx.db.transaction() as conn:
            await fetchone(
                conn,
                "INSERT INTO security_settings (name, value, updated_by) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value,"
                " updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING name",
                (name, json.dumps(value), updated_by),
            )
            await self.ctx.publish(conn, SETTINGS_CHANGED, name=name)
        self._cache(name, value)

    @deferred
    async def refresh(self) -> dict[str, Any]:
        """Reload every setting into the cache; returns it."""
        rows = await self.ctx.db.fetchall("SELECT name, value FROM security_settings")
        self.cached = {r["name"]: dict(r["value"]) for r in rows}
        return self.cached

    def _cache(self, name: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.cached.pop(name, None)
        else:
            self.cached[name] = value
