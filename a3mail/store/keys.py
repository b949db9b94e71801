"""API keys: only digests of the tokens are stored; see ``a3mail.auth.apikeys`` for tokens."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred
from a3mail.store.records import ApiKey, NotFound, build

PERMISSIONS = ("read", "write", "admin")
_SELECT = (
    "SELECT k.*, a.address AS account_address"
    " FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id"
)


class ApiKeys:
    """Create, authenticate, list and revoke API keys."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def create(
        self,
        *,
        key_id: str,
        key_hash: bytes,
        secret_hash: bytes,
        key_prefix: str,
        account_id: int | None,
        name: str = "",
        permissions: Sequence[str] = ("read",),
        expires_at: datetime | None = None,
    ) -> ApiKey:
        """Store a new key (digests only)."""
        bad = [p for p in permissions if p not in PERMISSIONS]
        if bad or not permissions:
            raise ValueError(f"permissions must be some of {', '.join(PERMISSIONS)}")
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(
                conn,
                "INSERT INTO api_keys (key_id, key_hash, secret_hash, key_prefix, account_id,"
                " name, permissions, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING id",
                (
                    key_id,
                    key_hash,
                    secret_hash,
                    key_prefix,
                    account_id,
                    name,
                    list(dict.fromkeys(permissions)),
                    expires_at,
                ),
            )
            full = await fetchone(conn, f"{_SELECT} WHERE k.id = %s", (row["id"],))
        return build(ApiKey, full)  # type: ignore[no-any-return]

    @deferred
    async def authenticate(self, token_hash: bytes) -> ApiKey | None:
        """The live key whose key or secret token has this digest (None if unknown, revoked,
        expired, or its account is disabled).  Records the time of use (at most once a minute)."""
        # One statement (one round trip: the HTTP API authenticates every request); the
        # data-modifying CTE records the use at most once a minute.
        row = await self.ctx.db.fetchone(
            f"WITH k AS ({_SELECT} WHERE (k.key_hash = %s OR k.secret_hash = %s)"
            " AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
            " AND (k.account_id IS NULL OR a.enabled)),"
            " used AS (UPDATE api_keys u SET last_used_at = now() FROM k WHERE u.id = k.id"
            " AND (u.last_used_at IS NULL OR u.last_used_at < now() - interval '1 minute'))"
            " SELECT * FROM k",
            (token_hash, token_hash),
        )
        if row is None:
            return None
        if not (
            hmac.compare_digest(row["key_hash"], token_hash)
            or hmac.compare_digest(row["secret_hash"], token_hash)
        ):
            return None
        return build(ApiKey, row)  # type: ignore[no-any-return]

    @deferred
    async def list(
        self, account_id: int | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        """Keys, newest first, optionally of one account."""
        clauses: list[str] = []
        params: list[Any] = []
        if account_id is not None:
            clauses.append("k.account_id = %s")
            params.append(account_id)
        if not include_revoked:
            clauses.append("k.revoked_at IS NULL")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = await self.ctx.db.fetchall(f"{_SELECT}{where} ORDER BY k.id DESC", params)
        return [build(ApiKey, r) for r in rows]

    @deferred
    async def revoke(self, key_id: str, account_id: int | None = None) -> ApiKey:
        """Revoke a key by its public id (optionally only if it belongs to *account_id*)."""
        async with self.ctx.db.transaction() as conn:
            query = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s"
            params: list[Any] = [key_id]
            if account_id is not None:
                query += " AND account_id = %s"
                params.append(account_id)
            row = await fetchone(conn, query + " RETURNING id", params)
            if row is None:
                raise NotFound(f"no such API key: {key_id}")
            full = await fetchone(conn, f"{_SELECT} WHERE k.id = %s", (row["id"],))
        return build(ApiKey, full)  # type: ignore[no-any-return]
