"""store_flags in one round trip (a3mail.store.flag_update): counters, events, ownership,
concurrency."""

from __future__ import annotations

from twisted.internet.defer import gatherResults

from a3mail.store import events, flag_update
from a3mail.store.records import Flag, NotFound
from tests.store.helpers import wait_for
from tests.support.store import StoreTestCase

MESSAGE = b"From: bob@remote.example\r\nSubject: Hi\r\n\r\nHello.\r\n"


class FlagUpdateTests(StoreTestCase):
    async def setUp(self):
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        for _ in range(4):
            blob = await self.store.incoming(MESSAGE)
            await self.store.messages.deliver(blob, ["alice@example.com"])

    async def inbox_row(self):
        return await self.store.mailboxes.get(self.alice.id, "INBOX")

    async def test_a_change_is_published_with_its_uids_and_modseq(self):
        received = []
        self.store.events.subscribe(received.append)
        await wait_for(lambda: self.store.events.connected)
        changed, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [3, 1], "+", ["\\Flagged"]
        )
        flags = await wait_for(lambda: [e for e in received if e.type == events.FLAGS_CHANGED])
        self.assertEqual(
            flags[0].data,
            {
                "account_id": self.alice.id,
                "mailbox_id": self.inbox.id,
                "modseq": changed[0].modseq,
                "uids": [1, 3],
                "states": [[1, int(Flag.FLAGGED), []], [3, int(Flag.FLAGGED), []]],
            },
        )

    async def test_a_change_that_changes_nothing_is_not_published(self):
        received = []
        self.store.events.subscribe(received.append)
        await wait_for(lambda: self.store.events.connected)
        before = await self.inbox_row()
        changed, failed = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1], "-", ["\\Flagged"]
        )
        self.assertEqual((changed, failed), ([], []))
        await self.store.messages.store_flags(self.alice.id, self.inbox.id, [2], "+", ["$Marker"])
        flags = await wait_for(
            lambda: [e for e in received if e.type == events.FLAGS_CHANGED], what="an event"
        )
        self.assertEqual([e.data["uids"] for e in flags], [[2]])
        self.assertEqual((await self.inbox_row()).highestmodseq, before.highestmodseq + 1)

    async def test_unseen_count_follows_seen_in_every_mode(self):
        await self.store.messages.store_flags(self.alice.id, self.inbox.id, [1, 2], "+", ["\\Seen"])
        self.assertEqual((await self.inbox_row()).unseen_count, 2)
        # Replacing flags without \Seen marks one message unseen again.
        await self.store.messages.store_flags(self.alice.id, self.inbox.id, [2], "=", ["Work"])
        self.assertEqual((await self.inbox_row()).unseen_count, 3)
        await self.store.messages.store_flags(self.alice.id, self.inbox.id, [1], "-", ["\\Seen"])
        self.assertEqual((await self.inbox_row()).unseen_count, 4)

    async def test_another_accounts_mailbox_is_not_found_and_untouched(self):
        bob = await self.make_account("bob@example.com")
        with self.assertRaises(NotFound):
            await self.store.messages.store_flags(bob.id, self.inbox.id, [1], "+", ["\\Seen"])
        self.assertEqual((await self.inbox_row()).unseen_count, 4)

    async def test_states_too_long_for_notify_are_left_out_before_the_uids(self):
        full = len(
            events.encode(
                events.FLAGS_CHANGED,
                {
                    "account_id": self.alice.id,
                    "mailbox_id": self.inbox.id,
                    "modseq": 10,
                    "uids": [1, 2, 3, 4],
                    "states": [[u, 0, ["$Marker"]] for u in (1, 2, 3, 4)],
                },
            )
        )
        self.patch(flag_update, "_NOTIFY_LIMIT", full - 20)  # only the UIDs fit
        received = []
        self.store.events.subscribe(received.append)
        await wait_for(lambda: self.store.events.connected)
        await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1, 2, 3, 4], "+", ["$Marker"]
        )
        [event] = await wait_for(lambda: [e for e in received if e.type == events.FLAGS_CHANGED])
        self.assertEqual((event.data["uids"], event.data["states"]), ([1, 2, 3, 4], None))

    async def test_a_uid_list_too_long_for_notify_is_published_as_null(self):
        self.patch(flag_update, "_NOTIFY_LIMIT", 60)  # the full payload is longer
        received = []
        self.store.events.subscribe(received.append)
        await wait_for(lambda: self.store.events.connected)
        changed, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1, 2, 3, 4], "+", ["\\Seen"]
        )
        self.assertEqual(len(changed), 4)
        [event] = await wait_for(lambda: [e for e in received if e.type == events.FLAGS_CHANGED])
        self.assertIsNone(event.data["uids"])
        self.assertIsNone(event.data["states"])
        self.assertEqual(event.data["modseq"], changed[0].modseq)

    async def test_concurrent_changes_get_distinct_increasing_modseqs(self):
        results = await gatherResults(
            [
                self.store.messages.store_flags(
                    self.alice.id, self.inbox.id, [uid], "+", ["\\Seen"]
                )
                for uid in (1, 2, 3, 4)
            ]
        )
        modseqs = sorted(changed[0].modseq for changed, _ in results)
        self.assertEqual(len(set(modseqs)), 4)
        box = await self.inbox_row()
        self.assertEqual(box.highestmodseq, modseqs[-1])
        self.assertEqual(box.unseen_count, 0)
        states = await self.store.mailbox_states.messages(self.alice.id, self.inbox.id)
        self.assertEqual([s.flags & Flag.SEEN for s in states], [Flag.SEEN] * 4)

    async def test_racing_changes_of_the_same_messages_keep_the_counters_exact(self):
        """Many changes at once (several connections), toggling \\Seen on the same
        messages: each builds on the one that committed before it."""
        changes = [
            self.store.messages.store_flags(
                self.alice.id, self.inbox.id, [1 + i % 2, 3], "+-"[i % 3 == 0], ["\\Seen"]
            )
            for i in range(24)
        ]
        results = await gatherResults(changes)
        modseqs = [c.modseq for changed, _ in results for c in changed]
        per_statement = {c.modseq for changed, _ in results for c in changed}
        self.assertEqual(len(per_statement), len([r for r in results if r[0]]))
        states = await self.store.mailbox_states.messages(self.alice.id, self.inbox.id)
        box = await self.inbox_row()
        self.assertEqual(box.unseen_count, sum(1 for s in states if not s.flags & Flag.SEEN))
        self.assertEqual(box.highestmodseq, max(modseqs))
        self.assertEqual(box.highestmodseq, max(s.modseq for s in states))
