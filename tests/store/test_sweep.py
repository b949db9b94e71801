"""The start-up sweep: uncommitted files go, rows without a file are reported."""

from __future__ import annotations

import os
import time

from twisted.trial import unittest

from a3mail.store.store import SERVER_APP_PREFIX, server_application_name
from a3mail.store.sweep import MissingFile
from tests.store.helpers import aio, sleep
from tests.support.store import StoreTestCase

MESSAGE = b"From: bob@remote.example\r\nSubject: sweep\r\n\r\nHello.\r\n"
HOUR = 3600.0


def make_old(path, seconds: float = 2 * HOUR) -> None:
    """Set a file's modification time *seconds* into the past."""
    then = time.time() - seconds
    os.utime(path, (then, then))


class SweepTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")

    async def deliver(self, data: bytes = MESSAGE):
        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, ["alice@example.com"])
        [info] = await self.store.messages.list(
            self.alice.id, result.mailbox_id, min_uid=result.uid, limit=1
        )
        return info

    async def orphan(self, sub: str = "new") -> str:
        """A file linked into alice's INBOX directory with no index row (a crash before
        commit); returns its relative path.  Its source in mail/tmp is removed."""
        blob = await self.store.incoming(MESSAGE)
        rel = self.store.blobs.link(blob.path, self.alice.id, sub)
        blob.path.unlink()
        return rel

    def dead_account_dir(self, account_id: int = 987654) -> str:
        """A message file in the directory of an account id that has no row."""
        rel_dir = self.store.blobs.message_dir(account_id, "cur")
        (self.data_dir / rel_dir).mkdir(parents=True)
        (self.data_dir / rel_dir / "1.M1P1Q1.host").write_bytes(MESSAGE)
        return self.store.blobs.account_dir(account_id)

    def assertNothingRemoved(self, report) -> None:
        self.assertEqual(
            (report.removed_incoming, report.removed_orphans, report.removed_account_dirs),
            (0, 0, 0),
        )

    async def test_incoming_file_without_delivery_is_removed(self):
        kept = await self.deliver()
        blob = await self.store.incoming(MESSAGE)
        report = await self.store.sweep(grace=0)
        self.assertFalse(blob.path.exists())
        self.assertEqual(list(self.store.blobs.tmp_files()), [])
        self.assertEqual(report.removed_incoming, 1)
        self.assertEqual((report.removed_orphans, report.removed_account_dirs), (0, 0))
        self.assertEqual(await self.store.messages.read(kept), MESSAGE)
        self.assertEqual(report.missing, ())

    async def test_linked_file_without_index_row_is_removed(self):
        kept = await self.deliver()
        orphans = [await self.orphan("new"), await self.orphan("cur")]
        report = await self.store.sweep(grace=0)
        for rel in orphans:
            self.assertFalse((self.data_dir / rel).exists(), rel)
        self.assertEqual(report.removed_orphans, 2)
        self.assertEqual(list(self.store.blobs.account_files(self.alice.id)), [kept.blob_path])
        self.assertEqual(await self.store.messages.read(kept), MESSAGE)
        self.assertEqual(report.missing, ())

    async def test_directory_of_a_vanished_account_is_removed(self):
        kept = await self.deliver()
        dead = self.dead_account_dir()
        # An account whose row went but whose files stayed (a crash inside accounts.delete).
        bob = await self.make_account("bob@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["bob@example.com"])
        await aio(self.store.db.execute("DELETE FROM accounts WHERE id = %s", (bob.id,)))
        bob_dir = self.store.blobs.account_dir(bob.id)
        self.assertTrue((self.data_dir / bob_dir).is_dir())

        report = await self.store.sweep(grace=0)
        self.assertEqual(report.removed_account_dirs, 2)
        self.assertFalse((self.data_dir / dead).exists())
        self.assertFalse((self.data_dir / bob_dir).exists())
        self.assertEqual(sorted(self.store.blobs.account_ids_on_disk()), [self.alice.id])
        self.assertEqual(await self.store.messages.read(kept), MESSAGE)
        self.assertEqual((report.removed_incoming, report.removed_orphans), (0, 0))

    async def test_row_whose_file_is_gone_is_reported_as_missing(self):
        first = await self.deliver(MESSAGE)
        gone = await self.deliver(MESSAGE + b"second\r\n")
        last = await self.deliver(MESSAGE + b"third\r\n")
        (self.data_dir / gone.blob_path).unlink()
        report = await self.store.sweep(grace=0)
        self.assertEqual(
            report.missing, (MissingFile(self.alice.id, self.inbox.id, gone.uid, gone.blob_path),)
        )
        self.assertNothingRemoved(report)
        # The row is reported, not deleted; the other messages are untouched.
        infos = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.assertEqual([i.uid for i in infos], [first.uid, gone.uid, last.uid])
        self.assertEqual(await self.store.messages.read(first), MESSAGE)
        self.assertEqual(await self.store.messages.read(last), MESSAGE + b"third\r\n")

    async def test_files_younger_than_grace_are_kept(self):
        blob = await self.store.incoming(MESSAGE)
        orphan = await self.orphan()
        report = await self.store.sweep(grace=HOUR)
        self.assertNothingRemoved(report)
        self.assertTrue(blob.path.exists())
        self.assertTrue((self.data_dir / orphan).exists())

        make_old(blob.path)
        make_old(self.data_dir / orphan)
        young = await self.store.incoming(MESSAGE)
        young_orphan = await self.orphan()
        report = await self.store.sweep(grace=HOUR)
        self.assertEqual((report.removed_incoming, report.removed_orphans), (1, 1))
        self.assertFalse(blob.path.exists())
        self.assertFalse((self.data_dir / orphan).exists())
        self.assertTrue(young.path.exists())
        self.assertTrue((self.data_dir / young_orphan).exists())


class DefaultGraceTests(StoreTestCase):
    """``sweep(grace=None)``: 0 alone, ``default_grace`` when another server is connected."""

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        # This process's store is named like a server, as a3mail names its own.
        self.server = self.make_store(application_name=server_application_name())
        await self.server.open(listen=True)
        self.addCleanup(self.server.close)

    async def other_servers_now(self) -> int:
        row = await aio(
            self.store.db.fetchone(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE %s AND application_name <> %s",
                (SERVER_APP_PREFIX + "%", server_application_name()),
            )
        )
        return int(row["n"])

    async def test_alone_the_grace_is_zero(self):
        # A server store closed by an earlier test may take a moment to leave pg_stat_activity.
        for _ in range(100):
            if not await self.other_servers_now():
                break
            await sleep(0.05)
        else:
            raise unittest.SkipTest("another a3mail server is connected to the test database")
        young = await self.server.incoming(MESSAGE)
        report = await self.server.sweep(default_grace=HOUR)
        self.assertEqual(report.removed_incoming, 1)
        self.assertFalse(young.path.exists())

    async def test_with_another_server_connected_the_default_grace_applies(self):
        other = self.make_store(application_name=f"{SERVER_APP_PREFIX}elsewhere:{os.getpid()}")
        await other.open(listen=False)
        self.addCleanup(other.close)
        young = await self.server.incoming(MESSAGE)
        old = await self.server.incoming(MESSAGE)
        make_old(old.path)
        report = await self.server.sweep(default_grace=HOUR)
        self.assertEqual(report.removed_incoming, 1)
        self.assertTrue(young.path.exists())
        self.assertFalse(old.path.exists())
        # An explicit grace still overrides the default logic.
        report = await self.server.sweep(grace=0, default_grace=HOUR)
        self.assertFalse(young.path.exists())
