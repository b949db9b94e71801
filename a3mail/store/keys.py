"""API keys: only digests of the tokens are stored; see ``a3mail.auth.apikeys`` for tokens.

The HTTP API authenticates every request, so a key that authenticated is kept in a small
per-process cache for :data:`CACHE_TTL` seconds.  The cache is used only while the store's
event bus is listening: a trigger (migration 0011) announces every change that can end a
key's validity (revoked, expired, permissions or tokens changed, key or account deleted,
account disabled) to every a3mail process, which then drops its whole cache; this process
drops it at once when it makes such a change itself.  A key's own expiry time is checked
on every use.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, succeed

from a3mail.store import events
from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred
from a3mail.store.records import ApiKey, NotFound, build

#: How long an authenticated key is trusted without asking the database again.
CACHE_TTL = 10.0
#: At most this many keys are cached (the cache is emptied when it is full).
CACHE_SIZE = 10_000

PERMISSIONS = ("read", "write", "admin")
_SELECT = (
    "SELECT k.*, a.address AS account_address"
    " FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id"
)


class ApiKeys:
    """Create, authenticate, list and revoke API keys."""

    def __init__(
        self,
        ctx: StoreContext,
        bus: events.EventBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.bus = bus
        self.clock = clock
        self.cache_hits = 0
        self._cache: dict[bytes, tuple[float, ApiKey]] = {}
        self._generation = 0  # bumped by every invalidation: a lookup in flight keeps out
        if bus is not None:
            bus.subscribe(self._on_event)
        ctx.auth_observers.append(self.forget_cached)

    def forget_cached(self) -> None:
        """Drop every cached key (something that may end a key's validity changed)."""
        self._generation += 1
        self._cache.clear()

    def _on_event(self, event: events.Event) -> None:
        if event.type in (events.AUTH_CHANGED, events.BUS_RECONNECTED):
            self.forget_cached()

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

    def authenticate(self, token_hash: bytes) -> Deferred[ApiKey | None]:
        """The live key whose key or secret token has this digest (None if unknown, revoked,
        expired, or its account is disabled).

        Answered from the cache when this process authenticated the key in the last
        :data:`CACHE_TTL` seconds and nothing has changed since (see the module docstring).
        The database records the time of use, at most once a minute per key, when it is asked.
        """
        cached = self._cache.get(token_hash)
        if cached is not None:
            cached_at, key = cached
            if self.clock() - cached_at < CACHE_TTL and not _expired(key):
                self.cache_hits += 1
                return succeed(key)
            del self._cache[token_hash]
        return self._lookup(token_hash)

    @deferred
    async def _lookup(self, token_hash: bytes) -> ApiKey | None:
        generation = self._generation
        # One statement (one round trip); the data-modifying CTE records the use at most
        # once a minute.
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
        key: ApiKey = build(ApiKey, row)
        bus = self.bus
        if bus is not None and bus.connected and generation == self._generation:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[token_hash] = (self.clock(), key)
        return key

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
        self.forget_cached()
        return build(ApiKey, full)  # type: ignore[no-any-return]


def _expired(key: ApiKey) -> bool:
    return key.expires_at is not None and key.expires_at <= datetime.now(UTC)
