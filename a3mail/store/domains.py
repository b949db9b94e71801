"""Domains a3mail receives mail for."""

from __future__ import annotations

from typing import Any

import psycopg

from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.names import normalize_domain
from a3mail.store.records import AlreadyExists, Conflict, Domain, NotFound, build

_SELECT = (
    "SELECT d.*, (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id) AS users_count"
    " FROM domains d"
)


class Domains:
    """Add, list, change and remove domains."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def add(
        self,
        name: str,
        *,
        enabled: bool = True,
        max_users: int | None = None,
        max_quota: int | None = None,
    ) -> Domain:
        """Add a domain; :class:`AlreadyExists` if it is there."""
        domain = normalize_domain(name)
        try:
            async with self.ctx.db.transaction() as conn:
                row = await fetchone(
                    conn,
                    "INSERT INTO domains (name, enabled, max_users, max_quota)"
                    " VALUES (%s, %s, %s, %s) RETURNING *, 0 AS users_count",
                    (domain, enabled, max_users, max_quota),
                )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"domain {domain} exists already") from e
        return build(Domain, row)  # type: ignore[no-any-return]

    @deferred
    async def get(self, name_or_id: str | int) -> Domain:
        """One domain by name or id; :class:`NotFound` otherwise."""
        async with self.ctx.db.transaction() as conn:
            return await get_domain(conn, name_or_id)

    @deferred
    async def list(self, search: str | None = None) -> list[Domain]:
        """Every domain (optionally whose name contains *search*), by name."""
        where: str = ""
        params: tuple[str, ...] = ()
        if search:
            where, params = " WHERE d.name LIKE %s", (f"%{_escape_like(search.lower())}%",)
        rows = await self.ctx.db.fetchall(f"{_SELECT}{where} ORDER BY d.name", params)
        return [build(Domain, r) for r in rows]

    @deferred
    async def update(self, name_or_id: str | int, **changes: Any) -> Domain:
        """Change enabled, max_users or max_quota."""
        allowed = {"enabled", "max_users", "max_quota"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        async with self.ctx.db.transaction() as conn:
            domain = await get_domain(conn, name_or_id)
            for key, value in changes.items():
                await conn.execute(
                    f"UPDATE domains SET {key} = %s WHERE id = %s",
                    (value, domain.id),
                )
            return await get_domain(conn, domain.id)

    @deferred
    async def delete(self, name_or_id: str | int, *, force: bool = False) -> Domain:
        """Remove a domain; with users it is a :class:`Conflict` unless *force* (then their
        accounts and mail go too)."""
        async with self.ctx.db.transaction() as conn:
            domain = await get_domain(conn, name_or_id)
            if domain.users_count and not force:
                raise Conflict(f"domain {domain.name} has {domain.users_count} users")
            rows = await fetchall(
                conn, "DELETE FROM accounts WHERE domain_id = %s RETURNING id", (domain.id,)
            )
            await conn.execute("DELETE FROM domains WHERE id = %s", (domain.id,))
        if rows:
            self.ctx.auth_changed()
        for row in rows:
            await self.ctx.in_thread(self.ctx.blobs.remove_account, row["id"])
        return domain

    @deferred
    async def is_local(self, name: str) -> bool:
        """True if mail for *name* is ours (the domain exists and is enabled)."""
        row = await self.ctx.db.fetchone(
            "SELECT enabled FROM domains WHERE name = %s", (name.lower().rstrip("."),)
        )
        return bool(row and row["enabled"])


async def get_domain(conn: Any, name_or_id: str | int) -> Domain:
    """Fetch one domain inside a transaction."""
    if isinstance(name_or_id, int):
        row = await fetchone(conn, f"{_SELECT} WHERE d.id = %s", (name_or_id,))
    else:
        row = await fetchone(conn, f"{_SELECT} WHERE d.name = %s", (name_or_id.lower(),))
    if row is None:
        raise NotFound(f"no such domain: {name_or_id}")
    return build(Domain, row)  # type: ignore[no-any-return]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
