"""store.tempmail against the real PostgreSQL: domains, creation, ownership, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from a3mail.auth.apikeys import token_digest
from a3mail.store.records import AlreadyExists, NotFound
from tests.support.store import StoreTestCase

NOW = datetime(2025, 1, 1, tzinfo=UTC)


class TempMailStoreTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await self.store.domains.add("temp.example")
        await self.store.tempmail.set_domain("temp.example", True)
        await self.store.domains.add("plain.example")

    async def create(self, address: str, key: str = "key_a", **kw: object) -> object:
        return await self.store.tempmail.create(
            address,
            key_id=key,
            token_hash=token_digest(f"mt_{address}"),
            expires_at=kw.get("expires_at", NOW + timedelta(hours=1)),
        )

    async def test_domains_need_the_flag_and_to_be_enabled(self):
        self.assertEqual(await self.store.tempmail.domains(), ["temp.example"])
        self.assertFalse(await self.store.tempmail.is_domain("plain.example"))
        await self.store.domains.update("temp.example", enabled=False)
        self.assertEqual(await self.store.tempmail.domains(), [])
        with self.assertRaises(NotFound):
            await self.store.tempmail.set_domain("nowhere.example", True)

    async def test_create_refuses_other_domains_and_taken_addresses(self):
        with self.assertRaises(NotFound):
            await self.create("x@plain.example")
        await self.create("x@temp.example")
        with self.assertRaises(AlreadyExists):
            await self.create("x@temp.example", key="key_b")
        await self.store.accounts.add_alias("alias@temp.example", "x@temp.example")
        with self.assertRaises(AlreadyExists):
            await self.create("alias@temp.example")

    async def test_ownership_and_token_lookup(self):
        account = await self.create("mine@temp.example")
        self.assertEqual((await self.store.tempmail.owned("key_a", account.id)).id, account.id)
        with self.assertRaises(NotFound):
            await self.store.tempmail.owned("key_b", account.id)
        found = await self.store.tempmail.by_token(token_digest("mt_mine@temp.example"))
        self.assertEqual((found[0].id, found[1]), (account.id, "key_a"))
        self.assertIsNone(await self.store.tempmail.by_token(token_digest("mt_other")))
        self.assertEqual(
            [a.id for a in await self.store.tempmail.page("key_a", offset=0, limit=10)],
            [account.id],
        )
        self.assertEqual(await self.store.tempmail.page("key_b", offset=0, limit=10), [])

    async def test_expired_lists_only_temp_addresses_past_their_time(self):
        old = await self.create("old@temp.example", expires_at=NOW - timedelta(seconds=1))
        await self.create("new@temp.example", expires_at=NOW + timedelta(seconds=1))
        await self.store.accounts.add("user@temp.example", expires_at=NOW - timedelta(days=9))
        self.assertEqual([a.id for a in await self.store.tempmail.expired(NOW)], [old.id])
