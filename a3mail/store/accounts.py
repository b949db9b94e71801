"""Mail accounts (users), their aliases, and address resolution."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

import attrs
import psycopg

from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.domains import _escape_like, get_domain
from a3mail.store.names import address_candidates, normalize_address, normalize_alias_address
from a3mail.store.records import (
    Account,
    AlreadyExists,
    InvalidName,
    LimitExceeded,
    NotFound,
    build,
)

# The mailboxes every new account gets, with their RFC 6154 special use.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
ROLES = ("user", "admin")
_CHANGEABLE = {"display_name", "role", "enabled", "attributes", "expires_at", "password_hash"}


@attrs.frozen
class Resolution:
    """Where mail for one address goes: local account ids and external addresses."""

    address: str
    account_ids: tuple[int, ...]
    external: tuple[str, ...]

    @property
    def exists(self) -> bool:
        """True if the address is a local account or an alias."""
        return bool(self.account_ids or self.external)


class Accounts:
    """Add, look up, change and remove accounts; manage aliases."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def add(
        self,
        address: str,
        *,
        password_hash: str | None = None,
        quota_bytes: int = 0,
        role: str = "user",
        display_name: str = "",
        enabled: bool = True,
        attributes: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> Account:
        """Create an account with its default mailboxes, in one transaction.

        Raises :class:`NotFound` for an unknown domain, :class:`AlreadyExists`, and
        :class:`LimitExceeded` past the domain's max_users or max_quota.
        """
        address = normalize_address(address)
        if role not in ROLES:
            raise InvalidName(f"invalid role: {role!r}")
        if quota_bytes < 0:
            raise InvalidName("quota must not be negative")
        domain_name = address.rpartition("@")[2]
        try:
            async with self.ctx.db.transaction() as conn:
                domain = await get_domain(conn, domain_name)
                await conn.execute("SELECT 1 FROM domains WHERE id = %s FOR UPDATE", (domain.id,))
                _check_domain_limits(
                    domain.max_users, domain.max_quota, domain.users_count + 1, quota_bytes
                )
                row = await fetchone(
                    conn,
                    "INSERT INTO accounts (domain_id, address, password_hash, quota_bytes, role,"
                    " display_name, enabled, attributes, expires_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (
                        domain.id,
                        address,
                        password_hash,
                        quota_bytes,
                        role,
                        display_name,
                        enabled,
                        json.dumps(attributes or {}),
                        expires_at,
                    ),
                )
                for name, special in DEFAULT_MAILBOXES:
                    await conn.execute(
                        "INSERT INTO mailboxes (account_id, name, special_use) VALUES (%s, %s, %s)",
                        (row["id"], name, special),
                    )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"account {address} exists already") from e
        return build(Account, row)  # type: ignore[no-any-return]

    @deferred
    async def get(self, address_or_id: str | int) -> Account:
        """One account by address or id; :class:`NotFound` otherwise."""
        async with self.ctx.db.transaction() as conn:
            return await get_account(conn, address_or_id)

    @deferred
    async def find(self, address: str) -> Account | None:
        """The account of exactly this address, or None (no error for bad syntax)."""
        try:
            address = normalize_address(address)
        except InvalidName:
            return None
        row = await self.ctx.db.fetchone("SELECT * FROM accounts WHERE address = %s", (address,))
        return None if row is None else build(Account, row)

    @deferred
    async def list(
        self,
        *,
        domain: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[builtins.list[Account], int]:
        """A page of accounts ordered by address, and the total matching count."""
        clauses, params = _filters(domain, search)
        rows = await self.ctx.db.fetchall(
            f"SELECT a.*, count(*) OVER () AS total FROM accounts a {clauses}"
            " ORDER BY a.address LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        total = rows[0]["total"] if rows else await self._count(clauses, params)
        return [build(Account, r) for r in rows], int(total)

    async def _count(self, clauses: str, params: tuple[Any, ...]) -> int:
        row = await self.ctx.db.fetchone(
            f"SELECT count(*) AS n FROM accounts a {clauses}",
            params,
        )
        return int(row["n"]) if row else 0

    @deferred
    async def update(self, address_or_id: str | int, **changes: Any) -> Account:
        """Change display_name, role, enabled, attributes, expires_at or password_hash."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        if "role" in changes and changes["role"] not in ROLES:
            raise InvalidName(f"invalid role: {changes['role']!r}")
        if "attributes" in changes:
            changes["attributes"] = json.dumps(changes["attributes"] or {})
        async with self.ctx.db.transaction() as conn:
            account = await get_account(conn, address_or_id)
            for key, value in changes.items():
                await conn.execute(
                    f"UPDATE accounts SET {key} = %s, updated_at = now() WHERE id = %s",
                    (value, account.id),
                )
            updated = await get_account(conn, account.id)
        if "enabled" in changes:
            self.ctx.auth_changed()
        return updated

    @deferred
    async def set_quota(self, address_or_id: str | int, quota_bytes: int) -> Account:
        """Set the quota in bytes (0 = unlimited), within the domain's max_quota."""
        if quota_bytes < 0:
            raise InvalidName("quota must not be negative")
        async with self.ctx.db.transaction() as conn:
            account = await get_account(conn, address_or_id)
            domain = await get_domain(conn, account.domain_id)
            _check_domain_limits(None, domain.max_quota, 0, quota_bytes)
            await conn.execute(
                "UPDATE accounts SET quota_bytes = %s, updated_at = now() WHERE id = %s",
                (quota_bytes, account.id),
            )
            return await get_account(conn, account.id)

    @deferred
    async def delete(self, address_or_id: str | int) -> Account:
        """Remove an account with all its mail (rows first, then the files)."""
        async with self.ctx.db.transaction() as conn:
            account = await get_account(conn, address_or_id)
            await conn.execute("DELETE FROM aliases WHERE target = %s", (account.address,))
            await conn.execute("DELETE FROM accounts WHERE id = %s", (account.id,))
        self.ctx.auth_changed()
        await self.ctx.in_thread(self.ctx.blobs.remove_account, account.id)
        return account

    @deferred
    async def resolve(self, address: str, *, catch_all: bool = True) -> Resolution:
        """Where mail for *address* goes (accounts first, then aliases, then the domain's
        catch-all unless *catch_all* is false; unknown = empty)."""
        try:
            address = normalize_address(address)
        except InvalidName:
            return Resolution(address, (), ())
        async with self.ctx.db.transaction() as conn:
            return await resolve_address(
                conn, address, delimiters=self.ctx.recipient_delimiter, catch_all=catch_all
            )

    # -- aliases -------------------------------------------------------------------------

    @deferred
    async def add_alias(self, address: str, target: str) -> None:
        """Make *address* (in a local domain) also deliver to *target*; ``@domain`` makes
        *target* the domain's catch-all."""
        address = normalize_alias_address(address)
        target = normalize_address(target)
        try:
            async with self.ctx.db.transaction() as conn:
                domain = await get_domain(conn, address.rpartition("@")[2])
                await conn.execute(
                    "INSERT INTO aliases (domain_id, address, target) VALUES (%s, %s, %s)",
                    (domain.id, address, target),
                )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"alias {address} -> {target} exists already") from e

    @deferred
    async def remove_alias(self, address: str, target: str | None = None) -> int:
        """Remove one target of an alias, or the whole alias; returns how many went."""
        address = normalize_alias_address(address)
        query, params = "DELETE FROM aliases WHERE address = %s", [address]
        if target is not None:
            query += " AND target = %s"
            params.append(normalize_address(target))
        return await self.ctx.db.execute(query, params)

    @deferred
    async def aliases(self, domain: str | None = None) -> builtins.list[tuple[str, str]]:
        """(address, target) pairs, optionally of one domain."""
        if domain:
            rows = await self.ctx.db.fetchall(
                "SELECT a.address, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id"
                " WHERE d.name = %s ORDER BY 1, 2",
                (domain.lower(),),
            )
        else:
            rows = await self.ctx.db.fetchall("SELECT address, target FROM aliases ORDER BY 1, 2")
        return [(r["address"], r["target"]) for r in rows]


async def get_account(conn: Any, address_or_id: str | int) -> Account:
    """Fetch one account inside a transaction."""
    if isinstance(address_or_id, int):
        row = await fetchone(conn, "SELECT * FROM accounts WHERE id = %s", (address_or_id,))
    else:
        try:
            address = normalize_address(address_or_id)
        except InvalidName as e:
            raise NotFound(f"no such account: {address_or_id}") from e
        row = await fetchone(conn, "SELECT * FROM accounts WHERE address = %s", (address,))
    if row is None:
        raise NotFound(f"no such account: {address_or_id}")
    return build(Account, row)  # type: ignore[no-any-return]


async def resolve_address(
    conn: Any, address: str, *, delimiters: str = "+", catch_all: bool = True
) -> Resolution:
    """Resolve a normalised address to accounts and external targets: the first of its
    :func:`~a3mail.store.names.address_candidates` (itself, without its extension, the
    domain's catch-all unless *catch_all* is false) that is an account or an alias (one
    alias level; an account's own alias is a forward: the account and the alias targets)."""
    candidates = address_candidates(address, delimiters, catch_all=catch_all)
    rows = await fetchall(  # one statement for every candidate; the account row first
        conn,
        "SELECT address AS key, NULL::text AS target, id AS account_id FROM accounts"
        " WHERE address = ANY(%(c)s)"
        " UNION ALL"
        " SELECT al.address, al.target, ac.id FROM aliases al"
        " LEFT JOIN accounts ac ON ac.address = al.target WHERE al.address = ANY(%(c)s)"
        " ORDER BY 1, 2 NULLS FIRST",
        {"c": candidates},
    )
    for candidate in candidates:
        hits = [r for r in rows if r["key"] == candidate]
        if hits:
            local = (r["account_id"] for r in hits if r["account_id"] is not None)
            external = tuple(r["target"] for r in hits if r["account_id"] is None)
            return Resolution(address, tuple(dict.fromkeys(local)), external)
    return Resolution(address, (), ())


def _check_domain_limits(
    max_users: int | None, max_quota: int | None, users: int, quota: int
) -> None:
    if max_users is not None and users > max_users:
        raise LimitExceeded(f"the domain allows at most {max_users} users")
    if max_quota is not None and max_quota > 0 and (quota == 0 or quota > max_quota):
        raise LimitExceeded(f"the domain allows a quota of at most {max_quota} bytes")


def _filters(domain: str | None, search: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, params = [], []
    if domain:
        clauses.append("a.domain_id = (SELECT id FROM domains WHERE name = %s)")
        params.append(domain.lower())
    if search:
        clauses.append("(a.address LIKE %s OR lower(a.display_name) LIKE %s)")
        pattern = f"%{_escape_like(search.lower())}%"
        params += [pattern, pattern]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)
