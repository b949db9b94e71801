"""``a3mail queue ...`` and ``a3mail dkim generate``, run as real processes."""

from __future__ import annotations

from pathlib import Path

import dkim
from twisted.internet import threads
from twisted.trial import unittest

from a3mail.store import Database, Store
from tests.support import pg
from tests.support.store import require_asyncio_reactor
from tests.test_cli import run_cli

MESSAGE = b"From: a@example.com\r\nSubject: cli\r\n\r\nbody\r\n"


class QueueCliTests(unittest.TestCase):
    def setUp(self):
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("clio")
        self.addCleanup(pg.drop_schema, self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.config = Path(self.mktemp())
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n[database]\ndsn = "{pg.dsn()}"\n'
            f'schema = "{self.schema}"\n'
        )

    def cli(self, *args, ok=True):
        def run():
            result = run_cli(self.config, *args)
            if ok and result.returncode != 0:
                raise AssertionError(f"a3mail {' '.join(args)} failed: {result.stderr}")
            return result

        return threads.deferToThread(run)

    async def open_store(self):
        store = Store(Database(pg.dsn(), min_size=1, max_size=2, schema=self.schema), self.data_dir)
        await store.open(migrate=False, listen=False)
        self.addCleanup(store.close)
        return store

    async def test_list_show_retry_flush_delete(self):
        await self.cli("queue", "flush")  # creates and migrates the schema
        store = await self.open_store()
        blob = await store.incoming(MESSAGE)
        [entry_id] = await store.queue.enqueue(blob, "a@example.com", ["b@example.net"])
        listed = await self.cli("queue", "list")
        self.assertIn(f"{entry_id}\tqueued\t0\t", listed.stdout)
        self.assertIn("b@example.net", listed.stdout)
        shown = await self.cli("queue", "show", str(entry_id))
        self.assertIn("recipients: b@example.net", shown.stdout)
        self.assertIn(f"size: {len(MESSAGE)}", shown.stdout)
        missing = await self.cli("queue", "show", "999", ok=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no such queue entry", missing.stderr)
        self.assertIn("entries due now", (await self.cli("queue", "flush")).stdout)
        self.assertIn("entries due now", (await self.cli("queue", "retry", str(entry_id))).stdout)
        deleted = await self.cli("queue", "delete", str(entry_id))
        self.assertEqual(deleted.stdout, "1 entries deleted\n")
        self.assertEqual(await store.queue.list(), [])
        self.assertEqual(list((self.data_dir / "mail" / "queue").iterdir()), [])

    async def test_dkim_generate_prints_a_record_that_verifies(self):
        await self.cli("queue", "flush")  # creates and migrates the schema
        store = await self.open_store()
        await store.domains.add("example.com")
        result = await self.cli("dkim", "generate", "--domain", "example.com", "--selector", "s1")
        name, _, rest = result.stdout.partition(" IN TXT ")
        self.assertEqual(name, "s1._domainkey.example.com.")
        record = rest.strip().strip('"')
        self.assertTrue(record.startswith("v=DKIM1; k=rsa; p="))
        key = (self.data_dir / "dkim" / "example.com" / "s1.key").read_bytes()
        message = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"
        signed = dkim.sign(message, b"s1", b"example.com", key) + message
        self.assertTrue(dkim.verify(signed, dnsfunc=lambda n, timeout=5: record.encode()))
        again = await self.cli(
            "dkim", "generate", "--domain", "example.com", "--selector", "s1", ok=False
        )
        self.assertIn("exists", again.stderr)
        other = await self.cli("dkim", "generate", "--domain", "nope.example", ok=False)
        self.assertIn("not a local domain", other.stderr)
