"""Domains, accounts and aliases against real PostgreSQL."""

from __future__ import annotations

import attrs

from a3mail.store.accounts import DEFAULT_MAILBOXES
from a3mail.store.records import (
    AlreadyExists,
    Conflict,
    DeliveryStatus,
    InvalidName,
    LimitExceeded,
    NotFound,
)
from tests.support.store import StoreTestCase


class DomainTests(StoreTestCase):
    async def test_add_normalises_and_lists_with_user_count(self):
        await self.store.domains.add("Example.COM.")
        await self.store.domains.add("b.example")
        await self.store.accounts.add("x@example.com")
        domains = await self.store.domains.list()
        self.assertEqual(
            [(d.name, d.users_count) for d in domains], [("b.example", 0), ("example.com", 1)]
        )

    async def test_duplicate_is_already_exists(self):
        await self.store.domains.add("example.com")
        with self.assertRaises(AlreadyExists):
            await self.store.domains.add("EXAMPLE.com")

    async def test_invalid_domain_names_are_refused(self):
        for bad in ["", "localhost", "-a.com", "a..com", "a b.com", "x" * 64 + ".com"]:
            with self.assertRaises(InvalidName, msg=bad):
                await self.store.domains.add(bad)

    async def test_idn_is_stored_as_a_label(self):
        domain = await self.store.domains.add("bücher.example")
        self.assertEqual(domain.name, "xn--bcher-kva.example")

    async def test_delete_with_users_conflicts_unless_forced(self):
        await self.make_account("a@example.com")
        with self.assertRaises(Conflict):
            await self.store.domains.delete("example.com")
        await self.store.domains.delete("example.com", force=True)
        with self.assertRaises(NotFound):
            await self.store.accounts.get("a@example.com")
        self.assertEqual(await self.store.domains.list(), [])

    async def test_is_local_only_for_enabled_domains(self):
        await self.store.domains.add("example.com")
        await self.store.domains.add("off.example", enabled=False)
        self.assertTrue(await self.store.domains.is_local("EXAMPLE.COM"))
        self.assertFalse(await self.store.domains.is_local("off.example"))
        self.assertFalse(await self.store.domains.is_local("other.example"))


class AccountTests(StoreTestCase):
    async def test_new_account_has_the_special_use_mailboxes(self):
        account = await self.make_account("Alice@Example.com")
        self.assertEqual(account.address, "alice@example.com")
        boxes = await self.store.mailboxes.list(account.id)
        self.assertEqual({(b.name, b.special_use) for b in boxes}, set(DEFAULT_MAILBOXES))
        self.assertEqual(boxes[0].name, "INBOX")
        self.assertEqual(len({b.uidvalidity for b in boxes}), len(boxes))

    async def test_unknown_domain_is_not_found(self):
        with self.assertRaises(NotFound):
            await self.store.accounts.add("a@nowhere.example")

    async def test_duplicate_address_is_already_exists(self):
        await self.make_account("a@example.com")
        with self.assertRaises(AlreadyExists):
            await self.store.accounts.add("A@example.com")

    async def test_invalid_addresses_are_refused(self):
        await self.store.domains.add("example.com")
        for bad in [
            "a",
            "@example.com",
            "a b@example.com",
            "a/../b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "x" * 65 + "@example.com",
        ]:
            with self.assertRaises(InvalidName, msg=bad):
                await self.store.accounts.add(bad)

    async def test_utf8_local_part_is_accepted(self):
        account = await self.make_account("Jörg@example.com")
        self.assertEqual(account.address, "jörg@example.com")

    async def test_domain_max_users_is_enforced(self):
        await self.store.domains.add("example.com", max_users=1)
        await self.store.accounts.add("a@example.com")
        with self.assertRaises(LimitExceeded):
            await self.store.accounts.add("b@example.com")

    async def test_domain_max_quota_is_enforced(self):
        await self.store.domains.add("example.com", max_quota=1000)
        with self.assertRaises(LimitExceeded):
            await self.store.accounts.add("a@example.com", quota_bytes=2000)
        with self.assertRaises(LimitExceeded):
            await self.store.accounts.add("a@example.com")  # unlimited exceeds the cap
        account = await self.store.accounts.add("a@example.com", quota_bytes=1000)
        with self.assertRaises(LimitExceeded):
            await self.store.accounts.set_quota(account.id, 1001)

    async def test_list_pages_filters_and_counts(self):
        for name in ["carol", "alice", "bob"]:
            await self.make_account(f"{name}@example.com")
        await self.make_account("dave@other.example")
        page, total = await self.store.accounts.list(limit=2, offset=0)
        self.assertEqual([a.address for a in page], ["alice@example.com", "bob@example.com"])
        self.assertEqual(total, 4)
        page, total = await self.store.accounts.list(domain="other.example")
        self.assertEqual(([a.address for a in page], total), (["dave@other.example"], 1))
        page, total = await self.store.accounts.list(search="BO")
        self.assertEqual(([a.address for a in page], total), (["bob@example.com"], 1))
        page, total = await self.store.accounts.list(limit=2, offset=10)
        self.assertEqual((page, total), ([], 4))

    async def test_update_quota_and_delete(self):
        account = await self.make_account("a@example.com")
        updated = await self.store.accounts.update(account.id, display_name="A", enabled=False)
        self.assertEqual((updated.display_name, updated.enabled), ("A", False))
        self.assertEqual((await self.store.accounts.set_quota("a@example.com", 5)).quota_bytes, 5)
        with self.assertRaises(ValueError):
            await self.store.accounts.update(account.id, used_bytes=0)
        await self.store.accounts.delete("a@example.com")
        with self.assertRaises(NotFound):
            await self.store.accounts.get(account.id)

    async def test_password_hash_is_kept_but_not_in_repr(self):
        account = await self.make_account("a@example.com", password_hash="$argon2id$x")
        fetched = await self.store.accounts.get("a@example.com")
        self.assertEqual(fetched.password_hash, "$argon2id$x")
        self.assertNotIn("argon2", repr(account))


class AliasTests(StoreTestCase):
    async def test_resolution_of_accounts_aliases_and_unknowns(self):
        a = await self.make_account("a@example.com")
        b = await self.make_account("b@example.com")
        await self.store.accounts.add_alias("team@example.com", "a@example.com")
        await self.store.accounts.add_alias("team@example.com", "B@example.com")
        await self.store.accounts.add_alias("team@example.com", "out@remote.example")
        team = await self.store.accounts.resolve("Team@Example.com")
        self.assertEqual(set(team.account_ids), {a.id, b.id})
        self.assertEqual(team.external, ("out@remote.example",))
        direct = await self.store.accounts.resolve("a@example.com")
        self.assertEqual((direct.account_ids, direct.external), ((a.id,), ()))
        self.assertFalse((await self.store.accounts.resolve("nobody@example.com")).exists)
        self.assertFalse((await self.store.accounts.resolve("not an address")).exists)
        self.assertEqual(await self.store.accounts.remove_alias("team@example.com"), 3)

    async def test_catch_all_takes_what_nothing_else_takes(self):
        """``@domain`` catches mail for addresses of the domain that are neither accounts
        nor aliases, in the RCPT check, the resolution and the delivery; never for the
        others, never for another domain, and never as a right to send."""
        a = await self.make_account("a@example.com")
        b = await self.make_account("b@example.com")
        await self.store.domains.add("other.example")
        await self.store.accounts.add_alias("team@example.com", "out@remote.example")
        await self.store.accounts.add_alias("@Example.COM", "b@example.com")
        await self.store.accounts.add_alias("@example.com", "keep@remote.example")
        self.assertIn(("@example.com", "b@example.com"), await self.store.accounts.aliases())
        check = self.store.recipients.check
        stray = await check("Whoever@example.com")
        self.assertEqual((stray.exists, stray.account_ids), (True, (b.id,)))
        self.assertEqual(stray.external, ("keep@remote.example",))
        self.assertEqual((await check("a@example.com")).account_ids, (a.id,))
        team = await check("team@example.com")  # an alias, even one with no local target
        self.assertEqual((team.account_ids, team.external), ((), ("out@remote.example",)))
        self.assertFalse((await check("x@other.example")).exists)
        resolved = await self.store.accounts.resolve("whoever@example.com")
        self.assertEqual(resolved.account_ids, (b.id,))
        closed = await self.store.accounts.resolve("whoever@example.com", catch_all=False)
        self.assertFalse(closed.exists)
        [result] = await self.store.messages.deliver(
            await self.store.incoming(b"Subject: stray\r\n\r\nx\r\n"), ["whoever@example.com"]
        )
        self.assertEqual((result.status, result.account_id), (DeliveryStatus.DELIVERED, b.id))
        [result] = await self.store.messages.deliver(
            await self.store.incoming(b"Subject: team\r\n\r\nx\r\n"), ["team@example.com"]
        )
        self.assertNotEqual(result.status, DeliveryStatus.DELIVERED)  # external only: not here
        self.assertEqual(await self.store.accounts.remove_alias("@example.com"), 2)
        self.assertFalse((await check("whoever@example.com")).exists)

    async def test_address_extensions_go_to_the_base_address(self):
        """alice+news@ is alice@ unless the full address exists; before the catch-all; an
        extension of an alias follows the alias; another delimiter set, or none, too."""
        a = await self.make_account("a@example.com")
        b = await self.make_account("b@example.com")
        c = await self.make_account("a+kept@example.com")
        await self.store.accounts.add_alias("team@example.com", "b@example.com")
        await self.store.accounts.add_alias("@example.com", "b@example.com")
        check = self.store.recipients.check
        self.assertEqual((await check("A+News@example.com")).account_ids, (a.id,))
        self.assertEqual((await check("a+kept@example.com")).account_ids, (c.id,))
        self.assertEqual((await check("team+x+y@example.com")).account_ids, (b.id,))
        self.assertEqual((await check("+a@example.com")).account_ids, (b.id,))  # catch-all
        self.assertEqual((await check("nobody+a@example.com")).account_ids, (b.id,))
        resolved = await self.store.accounts.resolve("a+news@example.com", catch_all=False)
        self.assertEqual(resolved.account_ids, (a.id,))
        [result] = await self.store.messages.deliver(
            await self.store.incoming(b"Subject: tagged\r\n\r\nx\r\n"), ["a+news@example.com"]
        )
        self.assertEqual((result.status, result.account_id), (DeliveryStatus.DELIVERED, a.id))
        self.store.ctx = attrs.evolve(self.store.ctx, recipient_delimiter="-")
        self.store.recipients.ctx = self.store.ctx
        self.assertEqual((await check("a-news@example.com")).account_ids, (a.id,))
        self.assertEqual((await check("a+news@example.com")).account_ids, (b.id,))

    async def test_alias_needs_a_local_domain(self):
        with self.assertRaises(NotFound):
            await self.store.accounts.add_alias("x@nowhere.example", "a@example.com")
