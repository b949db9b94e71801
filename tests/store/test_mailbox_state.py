"""The compact per-mailbox message state read by IMAP sessions."""

from __future__ import annotations

from a3mail.store.mailbox_state import MessageState
from tests.support.store import StoreTestCase


class MailboxStateTests(StoreTestCase):
    async def test_messages_in_uid_order_from_min_uid(self):
        alice = await self.make_account("alice@example.com")
        bob = await self.make_account("bob@example.com")
        for _ in range(3):
            blob = await self.store.incoming(b"Subject: x\r\n\r\nbody\r\n")
            await self.store.messages.deliver(blob, ["alice@example.com", "bob@example.com"])
        inbox = await self.store.mailboxes.get(alice.id, "INBOX")
        await self.store.messages.store_flags(alice.id, inbox.id, [2], "+", ["\\Seen", "$A"])
        states = await self.store.mailbox_states.messages(alice.id, inbox.id)
        self.assertEqual([s.uid for s in states], [1, 2, 3])
        self.assertEqual(states[1].flags, 1)
        self.assertEqual(states[1].keywords, ("$A",))
        self.assertGreater(states[1].modseq, states[0].modseq)
        later = await self.store.mailbox_states.messages(alice.id, inbox.id, min_uid=3)
        self.assertEqual([s.uid for s in later], [3])
        self.assertIsInstance(later[0], MessageState)
        # Another account's mailbox id gives nothing.
        self.assertEqual(await self.store.mailbox_states.messages(bob.id, inbox.id), [])

    async def test_snapshot(self):
        alice = await self.make_account("alice@example.com")
        inbox = await self.store.mailboxes.get(alice.id, "INBOX")
        empty = await self.store.mailbox_states.snapshot(alice.id, inbox.id)
        self.assertEqual((empty.uids, empty.keywords), ([], {}))
        for _ in range(3):
            blob = await self.store.incoming(b"Subject: x\r\n\r\nbody\r\n")
            await self.store.messages.deliver(blob, ["alice@example.com"])
        await self.store.messages.store_flags(alice.id, inbox.id, [3], "+", ["\\Flagged", "$B"])
        snapshot = await self.store.mailbox_states.snapshot(alice.id, inbox.id)
        self.assertEqual(snapshot.uids, [1, 2, 3])
        self.assertEqual(snapshot.flags, [0, 0, 4])
        self.assertEqual(snapshot.keywords, {3: ("$B",)})
        self.assertEqual(len(snapshot.modseqs), 3)
