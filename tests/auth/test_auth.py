"""Passwords, API key tokens and the store password checker."""

from __future__ import annotations

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from a3mail.auth import apikeys
from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.passwords import hash_password, needs_rehash, verify_password
from tests.support.store import StoreTestCase


class PasswordTests(unittest.TestCase):
    def test_hash_is_argon2id_and_salted(self):
        first, second = hash_password("s3cret"), hash_password("s3cret")
        self.assertTrue(first.startswith("$argon2id$"))
        self.assertNotEqual(first, second)
        self.assertFalse(needs_rehash(first))

    def test_verify(self):
        stored = hash_password("s3cret")
        self.assertTrue(verify_password(stored, "s3cret"))
        self.assertFalse(verify_password(stored, "S3cret"))
        self.assertFalse(verify_password(None, "s3cret"))
        self.assertFalse(verify_password("not a hash", "s3cret"))
        self.assertFalse(verify_password(stored, "x" * 5000))

    def test_empty_and_huge_passwords_are_refused(self):
        self.assertRaises(ValueError, hash_password, "")
        self.assertRaises(ValueError, hash_password, "x" * 1025)

    def test_old_parameters_need_rehash(self):
        from argon2 import PasswordHasher

        weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
        self.assertTrue(needs_rehash(weak))


class ApiKeyTokenTests(unittest.TestCase):
    def test_generated_tokens_have_their_prefixes_and_differ(self):
        a, b = apikeys.generate(), apikeys.generate()
        self.assertTrue(a.key.startswith("mk_live_"))
        self.assertTrue(a.secret.startswith("sk_live_"))
        self.assertTrue(a.key_id.startswith("key_"))
        self.assertNotEqual(a.key, b.key)
        self.assertNotIn(a.key, repr(a))
        self.assertNotIn(a.secret, repr(a))
        self.assertEqual(a.key_hash, apikeys.token_digest(a.key))
        self.assertTrue(a.key.startswith(a.key_prefix))

    def test_token_syntax(self):
        self.assertTrue(apikeys.looks_like_token(apikeys.generate().key))
        for bad in ["", "Bearer", "mk_live_" + "x" * 300, "mk_live_\x00", "other_token"]:
            self.assertFalse(apikeys.looks_like_token(bad), bad)


class StoreKeyTests(StoreTestCase):
    async def create(self, **kwargs):
        account = await self.make_account("admin@example.com", role="admin")
        new = apikeys.generate()
        record = await self.store.keys.create(
            key_id=new.key_id,
            key_hash=new.key_hash,
            secret_hash=new.secret_hash,
            key_prefix=new.key_prefix,
            account_id=account.id,
            **kwargs,
        )
        return new, record

    async def test_either_token_authenticates_and_only_digests_are_stored(self):
        new, record = await self.create(name="ci", permissions=["read", "write"])
        for token in (new.key, new.secret):
            found = await self.store.keys.authenticate(apikeys.token_digest(token))
            self.assertEqual(found.key_id, record.key_id)
            self.assertEqual(found.permissions, ("read", "write"))
            self.assertEqual(found.account_address, "admin@example.com")
        self.assertIsNone(await self.store.keys.authenticate(apikeys.token_digest("mk_live_x")))
        [row] = await self.sql("SELECT * FROM api_keys")
        self.assertNotIn(
            new.key.encode(),
            b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values()),
        )

    async def test_revoked_and_expired_keys_do_not_authenticate(self):
        import datetime

        new, record = await self.create()
        await self.store.keys.revoke(record.key_id)
        self.assertIsNone(await self.store.keys.authenticate(new.key_hash))
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        other = apikeys.generate()
        await self.store.keys.create(
            key_id=other.key_id,
            key_hash=other.key_hash,
            secret_hash=other.secret_hash,
            key_prefix=other.key_prefix,
            account_id=None,
            expires_at=past,
        )
        self.assertIsNone(await self.store.keys.authenticate(other.key_hash))

    async def test_key_of_a_disabled_account_does_not_authenticate(self):
        new, _ = await self.create()
        await self.store.accounts.update("admin@example.com", enabled=False)
        self.assertIsNone(await self.store.keys.authenticate(new.key_hash))

    async def test_bad_permissions_are_refused(self):
        with self.assertRaises(ValueError):
            await self.create(permissions=["root"])

    async def test_list_and_revoke_unknown(self):
        _, record = await self.create()
        self.assertEqual([k.key_id for k in await self.store.keys.list()], [record.key_id])
        await self.store.keys.revoke(record.key_id)
        self.assertEqual(await self.store.keys.list(), [])
        self.assertEqual(len(await self.store.keys.list(include_revoked=True)), 1)
        from a3mail.store.records import NotFound

        with self.assertRaises(NotFound):
            await self.store.keys.revoke("key_nope")


class CheckerTests(StoreTestCase):
    async def setUp(self):
        await super().setUp()
        self.account = await self.make_account(
            "alice@example.com", password_hash=hash_password("right")
        )
        self.checker = AccountPasswordChecker(self.store)

    def test_provides_the_interface(self):
        from twisted.cred.checkers import ICredentialsChecker

        self.assertTrue(verifyObject(ICredentialsChecker, self.checker))

    async def test_right_password_gives_the_address(self):
        avatar = await self.checker.requestAvatarId(
            UsernamePassword(b"Alice@Example.com", b"right")
        )
        self.assertEqual(avatar, b"alice@example.com")

    async def test_wrong_password_unknown_user_and_disabled_fail_alike(self):
        await self.make_account(
            "off@example.com", password_hash=hash_password("right"), enabled=False
        )
        for user, password in [
            (b"alice@example.com", b"wrong"),
            (b"nobody@example.com", b"right"),
            (b"off@example.com", b"right"),
            (b"", b""),
            (b"alice@example.com", b"x" * 5000),
        ]:
            with self.assertRaises(UnauthorizedLogin):
                await self.checker.requestAvatarId(UsernamePassword(user, password))

    async def test_expired_account_fails(self):
        import datetime

        await self.store.accounts.update(
            self.account.id, expires_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        )
        with self.assertRaises(UnauthorizedLogin):
            await self.checker.requestAvatarId(UsernamePassword(b"alice@example.com", b"right"))


class LoginGuardTests(StoreTestCase):
    async def test_failure_is_recorded_and_delayed_on_the_clock(self):
        from twisted.internet.task import Clock

        from a3mail.auth.guard import LoginGuard

        clock = Clock()
        guard = LoginGuard(self.store, clock, failure_delay=2.0)
        done = []
        d = defer.Deferred.fromCoroutine(guard.failed("imap", "bob@example.com", "192.0.2.1"))
        d.addCallback(done.append)
        for _ in range(50):  # let the audit insert commit
            if clock.getDelayedCalls():
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(done, [])
        clock.advance(1.9)
        self.assertEqual(done, [])
        clock.advance(0.2)
        self.assertEqual(done, [None])
        entries, total = await self.store.audit.query(event_type="auth.failure")
        self.assertEqual(total, 1)
        self.assertEqual(
            (entries[0].actor, entries[0].ip, entries[0].success),
            ("bob@example.com", "192.0.2.1", False),
        )
        self.assertEqual(entries[0].details["protocol"], "imap")

    async def test_success_is_recorded(self):
        from twisted.internet.task import Clock

        from a3mail.auth.guard import LoginGuard

        await LoginGuard(self.store, Clock(), 1.0).succeeded("pop3", "a@example.com", "::1")
        entries, _ = await self.store.audit.query(event_type="auth.success")
        self.assertEqual(entries[0].details, {"protocol": "pop3"})
