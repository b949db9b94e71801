"""Session locks: PostgreSQL advisory locks on one dedicated connection per process."""

from __future__ import annotations

import psycopg

from a3mail.store import StoreUnavailable
from a3mail.store.locks import SessionLocks, namespace_key
from tests.store.helpers import aio, wait_for
from tests.support import pg
from tests.support.store import StoreTestCase


def terminate_backends(application_name: str) -> int:
    """Kill the server sessions of *application_name* (as a crash or an admin would)."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def lock_holders(schema: str, account_id: int, scope: str = "pop3") -> int:
    """How many server sessions hold the advisory lock of *account_id* in *scope*."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s::int::oid AND objid = %s::int::oid AND objsubid = 2",
            (namespace_key(schema, scope), account_id),
        ).fetchone()
    return int(row[0]) if row else 0


class SessionLockTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.lost: list[str] = []

    def on_lost(self, name: str):
        return lambda: self.lost.append(name)

    async def other_process(self, application_name: str = "a3mail-test-other"):
        """Another a3mail process's store on the same database and schema."""
        other = self.make_store(application_name=application_name)
        await other.open(listen=False)
        self.addCleanup(other.close)
        return other

    async def test_second_acquire_in_the_same_process_is_refused(self):
        first = await self.store.locks.acquire("pop3", 7, self.on_lost("a"))
        self.assertIsNotNone(first)
        self.assertIsNone(await self.store.locks.acquire("pop3", 7, self.on_lost("b")))
        self.assertTrue(first.held)
        self.assertEqual(lock_holders(self.schema, 7), 1)

    async def test_second_acquire_from_another_process_is_refused(self):
        other = await self.other_process()
        mine = await self.store.locks.acquire("pop3", 7, self.on_lost("mine"))
        self.assertIsNotNone(mine)
        self.assertIsNone(await other.locks.acquire("pop3", 7, self.on_lost("theirs")))

    async def test_other_accounts_and_scopes_are_independent(self):
        other = await self.other_process()
        self.assertIsNotNone(await self.store.locks.acquire("pop3", 7, self.on_lost("a")))
        self.assertIsNotNone(await other.locks.acquire("pop3", 8, self.on_lost("b")))
        self.assertIsNotNone(await other.locks.acquire("imap-x", 7, self.on_lost("c")))
        self.assertNotEqual(namespace_key(self.schema, "pop3"), namespace_key("other", "pop3"))

    async def test_release_lets_the_next_session_in(self):
        other = await self.other_process()
        lock = await self.store.locks.acquire("pop3", 7, self.on_lost("a"))
        await lock.release()
        self.assertFalse(lock.held)
        self.assertEqual(lock_holders(self.schema, 7), 0)
        again = await other.locks.acquire("pop3", 7, self.on_lost("b"))
        self.assertIsNotNone(again)
        await lock.release()  # a second release is a no-op and does not free theirs
        self.assertTrue(again.held)
        self.assertEqual(lock_holders(self.schema, 7), 1)
        self.assertIsNone(await self.store.locks.acquire("pop3", 7, self.on_lost("c")))
        self.assertEqual(self.lost, [])

    async def test_confirm_checks_the_database(self):
        lock = await self.store.locks.acquire("pop3", 7, self.on_lost("a"))
        self.assertTrue(await lock.confirm())
        await lock.release()
        self.assertFalse(await lock.confirm())

    async def test_a_dead_holder_process_releases_its_locks(self):
        """A holder whose database session ends (process killed) frees the lock by itself."""
        dying = await self.other_process("a3mail-test-dying")
        held = await dying.locks.acquire("pop3", 7, self.on_lost("dying"))
        self.assertIsNotNone(held)
        self.assertIsNone(await self.store.locks.acquire("pop3", 7, self.on_lost("me")))
        self.assertGreaterEqual(terminate_backends("a3mail-test-dying"), 1)
        await wait_for(lambda: lock_holders(self.schema, 7) == 0, 10, "lock freed")
        self.assertIsNotNone(await self.store.locks.acquire("pop3", 7, self.on_lost("me")))

    async def test_losing_the_connection_tells_every_holder(self):
        locks = SessionLocks(self.store.db, keepalive=0.05)
        self.addCleanup(lambda: aio(locks.close()))
        await locks.acquire("pop3", 1, self.on_lost("one"))
        await locks.acquire("pop3", 2, self.on_lost("two"))
        pid = locks._conn.info.backend_pid  # type: ignore[union-attr]
        await self.sql("SELECT pg_terminate_backend(%s)", (pid,))
        await wait_for(lambda: len(self.lost) == 2, 10, "holders told")  # by the keepalive
        self.assertEqual(sorted(self.lost), ["one", "two"])
        self.assertEqual(locks.held_count, 0)
        # A new connection is opened for the next session.
        self.assertIsNotNone(await locks.acquire("pop3", 1, self.on_lost("again")))
        self.assertEqual(lock_holders(self.schema, 1), 1)

    async def test_check_notices_a_lost_connection_at_once(self):
        lock = await self.store.locks.acquire("pop3", 3, self.on_lost("three"))
        pid = self.store.locks._conn.info.backend_pid  # type: ignore[union-attr]
        await self.sql("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertFalse(await self.store.locks.check())
        await wait_for(lambda: self.lost == ["three"], 10, "holder told")
        self.assertFalse(lock.held)
        self.assertFalse(await lock.confirm())

    async def test_an_idle_dead_connection_is_replaced_on_acquire(self):
        lock = await self.store.locks.acquire("pop3", 3, self.on_lost("x"))
        await lock.release()
        pid = self.store.locks._conn.info.backend_pid  # type: ignore[union-attr]
        await self.sql("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertIsNotNone(await self.store.locks.acquire("pop3", 3, self.on_lost("y")))

    async def test_closing_the_store_releases_and_tells_holders(self):
        other = await self.other_process()
        await other.locks.acquire("pop3", 9, self.on_lost("other"))
        await other.close()
        await wait_for(lambda: self.lost == ["other"], 10, "holder told")
        self.assertIsNotNone(await self.store.locks.acquire("pop3", 9, self.on_lost("me")))

    async def test_unreachable_database_is_a_temporary_failure(self):
        locks = SessionLocks(self.make_store().db)
        locks.db.dsn = "postgresql://nobody@127.0.0.1:1/none"
        with self.assertRaises(StoreUnavailable):
            await locks.acquire("pop3", 1, self.on_lost("x"))
