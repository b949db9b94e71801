"""The outbound queue (migration 0002, enqueue, finish, sweep), the incoming-file spool and
the recipient check, against real PostgreSQL."""

from __future__ import annotations

import os

import psycopg
from twisted.trial import unittest

from a3mail.store import Database
from a3mail.store import events as store_events
from a3mail.store import migrate as migrations
from a3mail.store.queue import QUEUE_ADDED, group_by_domain
from a3mail.store.records import NotFound
from tests.store.helpers import aio, wait_for
from tests.support import pg
from tests.support.store import StoreTestCase, require_asyncio_reactor

MESSAGE = b"Return-Path: <a@example.com>\r\nSubject: queued\r\n\r\nbody\r\n"


class Migration0002Tests(unittest.TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("mig2")
        self.addCleanup(pg.drop_schema, self.schema)
        self.db = Database(
            pg.dsn(),
            min_size=1,
            max_size=2,
            schema=self.schema,
            application_name=f"a3mail-migration-test:{os.getpid()}",
        )
        await aio(self.db.open())
        self.addCleanup(lambda: aio(self.db.close()))

    async def test_0002_creates_the_queue_tables_with_their_constraints(self):
        applied = await aio(migrations.migrate(self.db))
        self.assertIn((2, "outbound_queue"), [(m.version, m.name) for m in applied])
        rows = await aio(
            self.db.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
        )
        self.assertLessEqual(
            {"outbound_messages", "outbound_queue"}, {r["table_name"] for r in rows}
        )
        await aio(
            self.db.execute(
                "INSERT INTO outbound_messages (sender, blob_path, size)"
                " VALUES ('', 'mail/queue/x', 1)"
            )
        )
        bad = [
            "INSERT INTO outbound_queue (message_id, domain, recipients)"
            " VALUES (1, 'a.example', '{}')",
            "INSERT INTO outbound_queue (message_id, domain, recipients, state)"
            " VALUES (1, 'a.example', '{x@a.example}', 'lost')",
            "INSERT INTO outbound_queue (message_id, domain, recipients)"
            " VALUES (9, 'a.example', '{x}')",
        ]
        for query in bad:
            with self.assertRaises(psycopg.Error):
                await aio(self.db.execute(query))
        await aio(
            self.db.execute(
                "INSERT INTO outbound_queue (message_id, domain, recipients)"
                " VALUES (1, 'a.example', '{x@a.example}')"
            )
        )
        [row] = await aio(self.db.fetchall("SELECT * FROM outbound_queue"))
        self.assertEqual((row["state"], row["attempts"], row["leased_by"]), ("queued", 0, None))
        await aio(self.db.execute("DELETE FROM outbound_messages"))
        self.assertEqual(await aio(self.db.fetchall("SELECT * FROM outbound_queue")), [])


class EnqueueTests(StoreTestCase):
    def test_group_by_domain(self):
        self.assertEqual(
            group_by_domain(["a@X.example", "b@x.example", "a@X.example", "c@y.example"]),
            {"x.example": ["a@X.example", "b@x.example"], "y.example": ["c@y.example"]},
        )
        self.assertRaises(ValueError, group_by_domain, ["nodomain"])

    async def test_enqueue_writes_one_entry_per_domain_and_links_the_file(self):
        events = []
        self.addCleanup(self.store.events.subscribe(events.append))
        await aio(self.store.events.wait_connected(5))
        blob = await self.store.incoming(MESSAGE)
        ids = await self.store.queue.enqueue(
            blob,
            "a@example.com",
            ["x@remote.example", "y@remote.example", "z@other.example"],
            skip_bytes=31,
        )
        self.assertEqual(len(ids), 2)
        entries = await self.store.queue.list()
        self.assertEqual(
            [(e.domain, e.recipients, e.state, e.attempts) for e in entries],
            [
                ("remote.example", ("x@remote.example", "y@remote.example"), "queued", 0),
                ("other.example", ("z@other.example",), "queued", 0),
            ],
        )
        self.assertEqual({e.blob_path for e in entries}, {entries[0].blob_path})
        path = self.data_dir / entries[0].blob_path
        self.assertEqual(path.read_bytes(), MESSAGE)
        self.assertEqual(path.parent, self.data_dir / "mail" / "queue")
        self.assertEqual((entries[0].skip_bytes, entries[0].size), (31, len(MESSAGE)))
        self.assertTrue(blob.path.exists())  # keep_source by default
        self.assertEqual((await self.store.queue.counts())["queued"], 2)
        await wait_for(lambda: any(e.type == QUEUE_ADDED for e in events))
        event = next(e for e in events if e.type == QUEUE_ADDED)
        self.assertEqual((event.data["entries"], event.data["recipients"]), (ids, 3))

    async def test_the_file_goes_when_the_last_entry_is_finished(self):
        blob = await self.store.incoming(MESSAGE)
        first, second = await self.store.queue.enqueue(
            blob, "", ["x@a.example", "y@b.example"], keep_source=False
        )
        self.assertFalse(blob.path.exists())
        entry = await self.store.queue.get(first)
        path = self.data_dir / entry.blob_path
        await self.store.queue.finish(first, "sent")
        self.assertTrue(path.exists())
        await self.store.queue.finish(second, "bounced", "550 no such user")
        self.assertFalse(path.exists())
        self.assertEqual(await self.store.queue.list(), [])
        with self.assertRaises(NotFound):
            await self.store.queue.get(first)
        with self.assertRaises(ValueError):
            await self.store.queue.finish(first, "queued")

    async def test_a_failed_transaction_leaves_no_row_and_no_file(self):
        blob = await self.store.incoming(MESSAGE)

        async def broken_publish(*args, **kwargs):
            raise RuntimeError("crash inside the transaction")

        self.patch(store_events, "publish", broken_publish)
        with self.assertRaises(RuntimeError):
            await self.store.queue.enqueue(blob, "a@example.com", ["y@b.example"])
        self.assertEqual(list((self.data_dir / "mail" / "queue").iterdir()), [])
        self.assertEqual(await self.store.queue.list(), [])
        self.assertTrue(blob.path.exists())  # the caller still owns its incoming file

    async def test_sweep_removes_unreferenced_queue_files_only(self):
        blob = await self.store.incoming(MESSAGE)
        await self.store.queue.enqueue(blob, "a@example.com", ["x@a.example"])
        stray = self.data_dir / "mail" / "queue" / "crash-leftover"
        stray.write_bytes(b"x")
        await self.store.sweep(grace=0)
        names = [p.name for p in (self.data_dir / "mail" / "queue").iterdir()]
        self.assertNotIn("crash-leftover", names)
        self.assertEqual(len(names), 1)
        [entry] = await self.store.queue.list()
        self.assertTrue((self.data_dir / entry.blob_path).exists())

    async def test_bad_arguments(self):
        blob = await self.store.incoming(MESSAGE)
        with self.assertRaises(ValueError):
            await self.store.queue.enqueue(blob, "", [])
        with self.assertRaises(ValueError):
            await self.store.queue.enqueue(blob, "", ["x@a.example"], skip_bytes=10**6)


class SpoolTests(StoreTestCase):
    async def test_assemble_prefix_and_body_without_skipped_ranges(self):
        writer = await self.store.spool.open_writer(b"A: 1\r\n", scratch=True)
        writer.write(b"Forged: x\r\n\tmore\r\nB: 2\r\n\r\nbody\r\n")
        scratch, parsed = await self.store.spool.finish(writer)
        self.assertIsNone(parsed)
        self.assertTrue(scratch.path.name.startswith("scratch-"))
        blob, parsed = await self.store.spool.assemble(
            b"Prefix: p\r\n", scratch, [(6, 24)], parser=lambda data: {"n": len(data)}
        )
        expected = b"Prefix: p\r\nA: 1\r\nB: 2\r\n\r\nbody\r\n"
        self.assertEqual(blob.path.read_bytes(), expected)
        self.assertEqual((blob.size, parsed), (len(expected), {"n": len(expected)}))
        self.assertFalse(scratch.path.exists())
        self.assertEqual(await self.store.spool.read(blob), expected)
        await self.store.spool.discard(blob)
        self.assertFalse(blob.path.exists())

    async def test_finish_fsyncs_and_parses_in_one_step(self):
        writer = await self.store.spool.open_writer(b"Subject: s\r\n\r\n")
        writer.write(b"hello\r\n")
        blob, parsed = await self.store.spool.finish(writer, lambda data: bytes(data[:7]))
        self.assertEqual(parsed, b"Subject")
        self.assertEqual(blob.size, len(b"Subject: s\r\n\r\nhello\r\n"))
        self.assertEqual(blob.path.parent, self.data_dir / "mail" / "tmp")

    async def test_only_incoming_files(self):
        from a3mail.store.blobs import IncomingBlob

        outside = IncomingBlob(self.data_dir / "elsewhere", 1)
        with self.assertRaises(ValueError):
            await self.store.spool.read(outside)


class RecipientCheckTests(StoreTestCase):
    async def test_check(self):
        alice = await self.make_account("alice@example.com", quota_bytes=1000)
        off = await self.make_account("off@example.com", enabled=False)
        await self.store.accounts.add_alias("team@example.com", "alice@example.com")
        await self.store.accounts.add_alias("team@example.com", "x@elsewhere.example")
        check = self.store.recipients.check
        self.assertFalse((await check("a@remote.example")).local_domain)
        unknown = await check("ghost@example.com")
        self.assertTrue(unknown.local_domain)
        self.assertFalse(unknown.exists)
        ok = await check("Alice@Example.com", 500)
        self.assertEqual(
            (ok.address, ok.account_ids, ok.accepting),
            ("alice@example.com", (alice.id,), (alice.id,)),
        )
        self.assertTrue((await check("alice@example.com", 5000)).over_quota)
        team = await check("team@example.com", 5000)
        self.assertEqual(team.external, ("x@elsewhere.example",))
        self.assertFalse(team.over_quota)  # the external target still takes it
        self.assertTrue((await check("off@example.com")).all_disabled)
        self.assertEqual((await check("off@example.com")).disabled, (off.id,))
        self.assertFalse((await check("bad address@example.com")).exists)
