"""The per-process cache of authenticated API keys and what empties it.

A cached key saves the HTTP API one round trip per request; these tests prove that no
change that ends a key's validity is missed, whichever process (or psql) makes it.
"""

from __future__ import annotations

import datetime
from typing import Any

from a3mail.auth import apikeys
from a3mail.store import events
from a3mail.store.keys import CACHE_TTL
from tests.store.helpers import aio, sleep, wait_for
from tests.support.store import StoreTestCase


class KeyCacheTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await aio(self.store.events.wait_connected(10))
        self.account = await self.make_account("admin@example.com", role="admin")
        self.heard: list[str] = []
        self.store.events.subscribe(lambda e: self.heard.append(e.type))

    async def create(self, **kwargs: Any) -> Any:
        new = apikeys.generate()
        kwargs.setdefault("account_id", self.account.id)
        await self.store.keys.create(
            key_id=new.key_id,
            key_hash=new.key_hash,
            secret_hash=new.secret_hash,
            key_prefix=new.key_prefix,
            **kwargs,
        )
        return new

    async def authenticate(self, new: Any, store: Any = None) -> Any:
        return await (store or self.store).keys.authenticate(new.key_hash)

    async def heard_auth_change(self) -> None:
        await wait_for(lambda: events.AUTH_CHANGED in self.heard, what="auth.changed")

    async def test_second_use_is_answered_from_the_cache(self) -> None:
        new = await self.create()
        first = await self.authenticate(new)
        self.assertEqual(self.store.keys.cache_hits, 0)
        second = await self.authenticate(new)
        self.assertEqual(self.store.keys.cache_hits, 1)
        self.assertEqual(second, first)

    async def test_unknown_tokens_are_not_cached(self) -> None:
        unknown = apikeys.generate()
        self.assertIsNone(await self.authenticate(unknown))
        self.assertIsNone(await self.authenticate(unknown))
        self.assertEqual(self.store.keys.cache_hits, 0)

    async def test_revoked_in_this_process_fails_at_once(self) -> None:
        new = await self.create()
        await self.authenticate(new)
        await self.store.keys.revoke(new.key_id)
        self.assertIsNone(await self.authenticate(new))

    async def test_account_disabled_in_this_process_fails_at_once(self) -> None:
        new = await self.create()
        await self.authenticate(new)
        await self.store.accounts.update("admin@example.com", enabled=False)
        self.assertIsNone(await self.authenticate(new))

    async def test_account_deleted_with_its_domain_fails_at_once(self) -> None:
        new = await self.create()
        await self.authenticate(new)
        await self.store.domains.delete("example.com", force=True)
        self.assertIsNone(await self.authenticate(new))

    async def second_store(self) -> Any:
        """Another process's store on the same database, not listening to the bus."""
        other = self.make_store()
        await other.open(migrate=False, listen=False)
        self.addCleanup(other.close)
        return other

    async def test_revoked_by_another_process_fails_once_announced(self) -> None:
        other = await self.second_store()
        new = await self.create()
        await self.authenticate(new)
        await other.keys.revoke(new.key_id)
        await self.heard_auth_change()
        self.assertIsNone(await self.authenticate(new))

    async def test_changes_made_in_sql_are_announced(self) -> None:
        """psql (or any code path) changing a key or an account empties the caches."""
        cases = [
            "UPDATE api_keys SET permissions = ARRAY['read'] RETURNING 1",
            "UPDATE api_keys SET expires_at = now() - interval '1 day' RETURNING 1",
            "UPDATE accounts SET enabled = false RETURNING 1",
            "DELETE FROM api_keys RETURNING 1",
        ]
        for statement in cases:
            self.heard.clear()
            await self.sql(statement)
            await self.heard_auth_change()

    async def test_last_use_and_quota_updates_are_not_announced(self) -> None:
        """Bookkeeping updates keep the cache: a sentinel sent after them arrives first."""
        await self.create()
        await self.sql("UPDATE api_keys SET last_used_at = now() RETURNING 1")
        await self.sql("UPDATE accounts SET used_bytes = used_bytes + 1 RETURNING 1")
        await self.sql('SELECT pg_notify(%s, \'{"type":"sentinel"}\')', (self.store.ctx.channel,))
        await wait_for(lambda: "sentinel" in self.heard, what="the sentinel")
        self.assertNotIn(events.AUTH_CHANGED, self.heard)

    async def test_entries_expire_after_the_ttl(self) -> None:
        now = [1000.0]
        self.store.keys.clock = lambda: now[0]
        new = await self.create()
        await self.authenticate(new)
        now[0] += CACHE_TTL + 1
        await self.sql("UPDATE api_keys SET last_used_at = NULL RETURNING 1")  # not announced
        await self.authenticate(new)
        self.assertEqual(self.store.keys.cache_hits, 0)
        [row] = await self.sql("SELECT last_used_at FROM api_keys")
        self.assertIsNotNone(row["last_used_at"], "the database was asked again")

    async def test_a_key_past_its_expiry_time_fails_even_when_cached(self) -> None:
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=0.5)
        new = await self.create(expires_at=soon)
        self.assertIsNotNone(await self.authenticate(new))
        await sleep(0.6)
        self.assertIsNone(await self.authenticate(new))

    async def test_nothing_is_cached_without_the_event_bus(self) -> None:
        deaf = await self.second_store()
        new = await self.create()
        await self.authenticate(new, deaf)
        await self.authenticate(new, deaf)
        self.assertEqual(deaf.keys.cache_hits, 0)

    async def test_a_lookup_racing_an_invalidation_is_not_cached(self) -> None:
        """An invalidation heard while the key's row is being read keeps that row out."""
        new = await self.create()
        db = self.store.keys.ctx.db
        real_fetchone = db.fetchone

        async def fetchone_during_a_revocation(*args: Any) -> Any:
            row = await real_fetchone(*args)
            self.store.keys.forget_cached()  # the NOTIFY arrives before the reply is used
            return row

        self.patch(db, "fetchone", fetchone_during_a_revocation)
        await self.authenticate(new)
        self.patch(db, "fetchone", real_fetchone)
        await self.authenticate(new)
        self.assertEqual(self.store.keys.cache_hits, 0)
