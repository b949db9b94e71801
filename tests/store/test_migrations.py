"""Migration 0001 and the migration runner, on an empty schema of their own."""

from __future__ import annotations

import os
from pathlib import Path

from psycopg import errors
from twisted.internet import defer
from twisted.trial import unittest

from a3mail.store import Database, Store
from a3mail.store import migrate as migrations
from tests.store.helpers import aio
from tests.support import pg
from tests.support.store import require_asyncio_reactor

TABLES = {
    "domains",
    "accounts",
    "aliases",
    "mailboxes",
    "messages",
    "expunged",
    "api_keys",
    "audit_log",
    "schema_version",
}


class MigrationTests(unittest.TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("mig")
        self.addCleanup(pg.drop_schema, self.schema)
        self.db = await self.database()

    async def database(self) -> Database:
        db = Database(
            pg.dsn(),
            min_size=1,
            max_size=2,
            schema=self.schema,
            application_name=f"a3mail-migration-test:{os.getpid()}",
        )
        await aio(db.open())
        self.addCleanup(lambda: aio(db.close()))
        return db

    def migrate(self, db: Database | None = None) -> defer.Deferred:
        return aio(migrations.migrate(db or self.db))

    def status(self) -> defer.Deferred:
        return aio(migrations.status(self.db))

    def execute(self, query: str, params=None) -> defer.Deferred:
        return aio(self.db.execute(query, params))

    def fetchall(self, query: str, params=None) -> defer.Deferred:
        return aio(self.db.fetchall(query, params))

    async def test_the_code_ships_contiguous_migrations_starting_with_0001(self):
        available = migrations.available_migrations()
        self.assertEqual(available[0].version, 1)
        self.assertEqual(available[0].name, "initial")
        self.assertEqual([m.version for m in available], list(range(1, len(available) + 1)))

    async def test_empty_schema_has_everything_pending(self):
        status = await self.status()
        self.assertEqual(status.current, 0)
        self.assertEqual(status.applied, ())
        self.assertEqual(
            [m.version for m in status.pending],
            [m.version for m in migrations.available_migrations()],
        )

    async def test_0001_creates_the_tables(self):
        applied = await self.migrate()
        self.assertEqual((applied[0].version, applied[0].name), (1, "initial"))
        rows = await self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,),
        )
        self.assertLessEqual(TABLES, {r["table_name"] for r in rows})  # later ones add more
        [version, *_] = await self.fetchall(
            "SELECT version, name FROM schema_version ORDER BY version"
        )
        self.assertEqual((version["version"], version["name"]), (1, "initial"))

    async def test_0001_key_constraints(self):
        await self.migrate()
        await self.execute("INSERT INTO domains (name) VALUES ('example.com')")
        await self.assertFailure(
            self.execute("INSERT INTO domains (name) VALUES ('example.com')"),
            errors.UniqueViolation,
        )
        await self.assertFailure(
            self.execute("INSERT INTO domains (name) VALUES ('Example.ORG')"),
            errors.CheckViolation,
        )
        account = (
            "INSERT INTO accounts (domain_id, address)"
            " SELECT id, %s FROM domains WHERE name = 'example.com'"
        )
        await self.assertFailure(
            self.execute(account, ("Alice@example.com",)), errors.CheckViolation
        )
        await self.execute(account, ("alice@example.com",))
        await self.assertFailure(
            self.execute(account, ("alice@example.com",)), errors.UniqueViolation
        )
        await self.assertFailure(
            self.execute("INSERT INTO accounts (domain_id, address) VALUES (12345, 'x@y.example')"),
            errors.ForeignKeyViolation,
        )
        await self.execute(
            "INSERT INTO mailboxes (account_id, name) SELECT id, 'INBOX' FROM accounts"
        )
        await self.assertFailure(
            self.execute(
                "INSERT INTO mailboxes (account_id, name) SELECT id, 'INBOX' FROM accounts"
            ),
            errors.UniqueViolation,
        )
        message = (
            "INSERT INTO messages (mailbox_id, account_id, uid, modseq, size, blob_path)"
            " SELECT b.id, b.account_id, %s, 1, 10, 'mail/x' FROM mailboxes b"
        )
        await self.execute(message, (1,))
        await self.execute(message, (2,))
        await self.assertFailure(self.execute(message, (1,)), errors.UniqueViolation)
        await self.execute(
            "INSERT INTO expunged (mailbox_id, uid, modseq) SELECT id, 7, 2 FROM mailboxes"
        )
        await self.assertFailure(
            self.execute(
                "INSERT INTO expunged (mailbox_id, uid, modseq) SELECT id, 7, 3 FROM mailboxes"
            ),
            errors.UniqueViolation,
        )
        # Deleting an account takes its mailboxes and messages with it.
        await self.execute("DELETE FROM accounts")
        rows = await self.fetchall(
            "SELECT (SELECT count(*) FROM mailboxes) AS b, (SELECT count(*) FROM messages) AS m"
        )
        self.assertEqual((rows[0]["b"], rows[0]["m"]), (0, 0))

    async def test_second_migrate_applies_nothing(self):
        await self.migrate()
        self.assertEqual(await self.migrate(), [])
        versions = [m.version for m in migrations.available_migrations()]
        status = await self.status()
        self.assertEqual(status.current, versions[-1])
        self.assertEqual(status.applied, tuple(versions))
        self.assertEqual(status.pending, ())
        rows = await self.fetchall("SELECT version FROM schema_version ORDER BY version")
        self.assertEqual([r["version"] for r in rows], versions)

    async def test_concurrent_migrations_apply_once(self):
        other = await self.database()
        results = await defer.gatherResults([self.migrate(self.db), self.migrate(other)])
        versions = [m.version for m in migrations.available_migrations()]
        self.assertEqual(sorted(m.version for applied in results for m in applied), versions)
        rows = await self.fetchall("SELECT version FROM schema_version ORDER BY version")
        self.assertEqual([r["version"] for r in rows], versions)
        self.assertEqual((await self.status()).pending, ())

    async def test_a_newer_database_is_refused_clearly(self):
        await self.migrate()
        await self.execute("INSERT INTO schema_version (version, name) VALUES (999, 'future')")
        failure = await self.assertFailure(self.migrate(), RuntimeError)
        self.assertIn("999", str(failure))
        self.assertIn("newer", str(failure))
        # Opening a store on it fails the same way, and leaves no pool open.
        db = Database(pg.dsn(), min_size=1, max_size=2, schema=self.schema)
        store = Store(db, Path(self.mktemp()).absolute(), fsync=False)
        await self.assertFailure(store.open(), RuntimeError)
        self.assertTrue(db.pool.closed)

    async def test_uidvalidity_values_are_distinct_nonzero_32_bit(self):
        await self.migrate()
        rows = await self.fetchall(
            "SELECT nextval('uidvalidity_seq') AS v FROM generate_series(1, 200)"
        )
        values = [r["v"] for r in rows]
        self.assertEqual(len(set(values)), len(values))
        for v in values:
            self.assertTrue(0 < v < 2**32, v)
        [seq] = await self.fetchall(
            "SELECT min_value, max_value, cycle FROM pg_sequences"
            " WHERE schemaname = %s AND sequencename = 'uidvalidity_seq'",
            (self.schema,),
        )
        self.assertEqual((seq["min_value"], seq["max_value"]), (1, 2**32 - 1))
        # Every mailbox gets its own from the sequence.
        await self.execute("INSERT INTO domains (name) VALUES ('example.com')")
        await self.execute(
            "INSERT INTO accounts (domain_id, address) SELECT id, 'a@example.com' FROM domains"
        )
        await self.execute(
            "INSERT INTO mailboxes (account_id, name) SELECT a.id, n FROM accounts a,"
            " unnest(ARRAY['INBOX', 'Sent', 'Trash']) n"
        )
        boxes = await self.fetchall("SELECT uidvalidity FROM mailboxes")
        uidvalidities = [b["uidvalidity"] for b in boxes]
        self.assertEqual(len(set(uidvalidities) | set(values)), len(values) + 3)
        self.assertTrue(all(0 < v < 2**32 for v in uidvalidities))
