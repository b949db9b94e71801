"""The per-process snapshot cache that makes a warm SELECT of a big mailbox cheap."""

from __future__ import annotations

from array import array

from twisted.trial import unittest

from a3mail.imap.snapshots import Snapshot, SnapshotCache
from tests.imap.support import ImapTestCase


def snapshot(n: int) -> Snapshot:
    return Snapshot(array("q", range(1, n + 1)), array("i", [0] * n), array("q", [1] * n), {})


class SnapshotCacheTests(unittest.TestCase):
    def test_copies_small_mailboxes_and_lru(self):
        cache = SnapshotCache(max_entries=2, min_cached=2)
        cache.put((1, 1, 1), snapshot(1))
        self.assertIsNone(cache.get((1, 1, 1)))  # too small to be worth it
        cache.put((1, 1, 5), snapshot(3))
        got = cache.get((1, 1, 5))
        got.uids.append(99)  # the caller's copy
        self.assertEqual(list(cache.get((1, 1, 5)).uids), [1, 2, 3])
        cache.put((1, 1, 6), snapshot(4))  # a newer state replaces the old one
        self.assertIsNone(cache.get((1, 1, 5)))
        cache.put((2, 1, 1), snapshot(2))
        cache.put((3, 1, 1), snapshot(2))
        self.assertEqual(len(cache), 2)
        self.assertIsNone(cache.get((1, 1, 6)))


class WarmSelectTests(ImapTestCase):
    async def test_warm_select_reads_no_message_rows_until_the_mailbox_changes(self):
        self.factory.snapshots = SnapshotCache(min_cached=1)
        await self.deliver()
        await self.deliver()
        reads = []
        original = self.store.mailbox_states.snapshot

        def counting(*args):
            reads.append(args)
            return original(*args)

        self.patch(self.store.mailbox_states, "snapshot", counting)
        first = await self.session()
        second = await self.session()
        self.assertEqual(len(reads), 1)
        out = await self.send(second, b"a STORE 1 +FLAGS (\\Seen)\r\nb FETCH 1:2 FLAGS\r\n")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen))", out)
        self.assertIsNot(first.selected.uids, second.selected.uids)  # separate copies
        third = await self.session()
        self.assertEqual(len(reads), 2)  # HIGHESTMODSEQ moved: read again
        out = await self.send(third, b"d FETCH 1 FLAGS\r\n")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen))", out)
