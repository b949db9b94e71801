"""The per-process snapshot cache that makes a warm SELECT cheap."""

from __future__ import annotations

from array import array

from twisted.trial import unittest

from a3mail.imap.snapshots import Snapshot, SnapshotCache
from tests.imap.support import ImapTestCase


def snapshot(n: int) -> Snapshot:
    return Snapshot(array("q", range(1, n + 1)), array("i", [0] * n), array("q", [1] * n), {})


class SnapshotCacheTests(unittest.TestCase):
    def test_copies_and_keeps_only_the_newest_state_of_a_mailbox(self):
        cache = SnapshotCache()
        cache.put((1, 1, 1), snapshot(1))
        self.assertEqual(list(cache.get((1, 1, 1)).uids), [1])  # small mailboxes too
        cache.put((1, 1, 5), snapshot(3))
        self.assertIsNone(cache.get((1, 1, 1)))  # a newer state replaces the old one
        got = cache.get((1, 1, 5))
        got.uids.append(99)  # the caller's copy
        self.assertEqual(list(cache.get((1, 1, 5)).uids), [1, 2, 3])
        self.assertEqual((len(cache), cache.messages), (1, 3))

    def test_bounded_by_entries_least_recently_used_first(self):
        cache = SnapshotCache(max_entries=2)
        cache.put((1, 1, 1), snapshot(2))
        cache.put((2, 1, 1), snapshot(2))
        cache.get((1, 1, 1))  # used: mailbox 2 is now the oldest
        cache.put((3, 1, 1), snapshot(2))
        self.assertEqual((len(cache), cache.messages), (2, 4))
        self.assertIsNone(cache.get((2, 1, 1)))
        self.assertIsNotNone(cache.get((1, 1, 1)))

    def test_bounded_by_the_messages_held(self):
        cache = SnapshotCache(max_messages=10)
        cache.put((1, 1, 1), snapshot(11))  # alone over the bound: not cached
        self.assertEqual((len(cache), cache.messages), (0, 0))
        cache.put((1, 1, 2), snapshot(6))
        cache.put((2, 1, 1), snapshot(3))
        cache.put((3, 1, 1), snapshot(4))  # 13 > 10: the oldest goes
        self.assertIsNone(cache.get((1, 1, 2)))
        self.assertEqual((len(cache), cache.messages), (2, 7))


class WarmSelectTests(ImapTestCase):
    async def test_warm_select_reads_no_message_rows_until_the_mailbox_changes(self):
        self.factory.snapshots = SnapshotCache()
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
