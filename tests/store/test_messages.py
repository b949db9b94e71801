"""Delivery, append, copy, move, flags and expunge against real PostgreSQL and real files."""

from __future__ import annotations

import errno
import os

from twisted.trial.unittest import SkipTest

from a3mail.store import blobs, events
from a3mail.store.records import DeliveryStatus, Flag, NotFound, OverQuota
from tests.support.store import StoreTestCase

MESSAGE = (
    b"From: Bob <bob@remote.example>\r\nTo: alice@example.com\r\nSubject: Hi\r\n"
    b"Message-ID: <1@remote.example>\r\n\r\nHello Alice.\r\n"
)

PARSED = {
    "header_size": 100,
    "subject": "Hi",
    "from": [{"name": "Bob", "address": "bob@remote.example"}],
    "to": [{"name": "", "address": "alice@example.com"}],
    "date": "2026-11-21T10:00:00+00:00",
    "message_id": "<1@remote.example>",
    "text": "Hello Alice.",
    "html": "",
    "preview": "Hello Alice.",
    "attachments": [],
    "verification_code": "123456",
    "envelope": {"subject": "Hi"},
    "body": {"type": "text", "subtype": "plain"},
}


class DeliveryTests(StoreTestCase):
    async def deliver(self, recipients, data=MESSAGE, **kwargs):
        blob = await self.store.incoming(data)
        return await self.store.messages.deliver(blob, recipients, **kwargs)

    async def test_delivered_bytes_index_and_counters(self):
        alice = await self.make_account("alice@example.com")
        [result] = await self.deliver(["alice@example.com"], parsed=PARSED)
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        self.assertEqual(result.uid, 1)
        inbox = await self.store.mailboxes.get(alice.id, "INBOX")
        self.assertEqual((inbox.uidnext, inbox.message_count, inbox.unseen_count), (2, 1, 1))
        self.assertEqual(inbox.total_bytes, len(MESSAGE))
        [info] = await self.store.messages.list(alice.id, inbox.id)
        self.assertEqual(await self.store.messages.read(info), MESSAGE)
        self.assertTrue(info.blob_path.startswith(f"mail/{alice.id:02x}/{alice.id}/"))
        self.assertIn("/new/", info.blob_path)
        self.assertEqual((info.subject, info.from_addr), ("Hi", "Bob <bob@remote.example>"))
        self.assertEqual(info.verification_code, "123456")
        content = await self.store.messages.get(alice.id, inbox.id, 1)
        self.assertEqual(content.text, "Hello Alice.")
        self.assertEqual(content.parsed["envelope"], {"subject": "Hi"})
        self.assertNotIn("text", content.parsed)
        account = await self.store.accounts.get(alice.id)
        self.assertEqual((account.used_bytes, account.message_count), (len(MESSAGE), 1))

    async def test_source_file_is_removed_after_delivery(self):
        await self.make_account("alice@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"])
        self.assertFalse(blob.path.exists())
        self.assertEqual(os.listdir(self.store.blobs.tmp), [])

    async def test_keep_source_leaves_the_file(self):
        await self.make_account("alice@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], keep_source=True)
        self.assertTrue(blob.path.exists())

    async def test_per_recipient_outcome(self):
        await self.make_account("alice@example.com")
        await self.make_account("full@example.com", quota_bytes=10)
        await self.make_account("off@example.com", enabled=False)
        results = await self.deliver(
            [
                "alice@example.com",
                "full@example.com",
                "nobody@example.com",
                "off@example.com",
                "bad address",
            ]
        )
        self.assertEqual(
            [r.status for r in results],
            [
                DeliveryStatus.DELIVERED,
                DeliveryStatus.OVER_QUOTA,
                DeliveryStatus.UNKNOWN,
                DeliveryStatus.DISABLED,
                DeliveryStatus.UNKNOWN,
            ],
        )
        full = await self.store.accounts.get("full@example.com")
        self.assertEqual((full.used_bytes, full.message_count), (0, 0))

    async def test_quota_allows_up_to_the_limit(self):
        await self.make_account("a@example.com", quota_bytes=len(MESSAGE) * 2)
        statuses = [(await self.deliver(["a@example.com"]))[0].status for _ in range(3)]
        self.assertEqual(statuses, [DeliveryStatus.DELIVERED] * 2 + [DeliveryStatus.OVER_QUOTA])

    async def test_same_account_twice_gets_one_copy(self):
        alice = await self.make_account("alice@example.com")
        await self.store.accounts.add_alias("me@example.com", "alice@example.com")
        results = await self.deliver(["alice@example.com", "me@example.com"])
        self.assertEqual({r.status for r in results}, {DeliveryStatus.DELIVERED})
        self.assertEqual((await self.store.accounts.get(alice.id)).message_count, 1)

    async def test_uids_increase_per_mailbox(self):
        alice = await self.make_account("alice@example.com")
        bob = await self.make_account("bob@example.com")
        for _ in range(3):
            await self.deliver(["alice@example.com", "bob@example.com"])
        for account in (alice, bob):
            inbox = await self.store.mailboxes.get(account.id, "INBOX")
            infos = await self.store.messages.list(account.id, inbox.id)
            self.assertEqual([i.uid for i in infos], [1, 2, 3])
            self.assertEqual(sorted({i.modseq for i in infos}), [i.modseq for i in infos])

    async def test_delivery_into_a_named_mailbox_falls_back_to_inbox(self):
        alice = await self.make_account("alice@example.com")
        [r] = await self.deliver(["alice@example.com"], mailbox="Junk")
        self.assertEqual(r.mailbox_id, (await self.store.mailboxes.get(alice.id, "Junk")).id)
        [r] = await self.deliver(["alice@example.com"], mailbox="Nope")
        self.assertEqual(r.mailbox_id, (await self.store.mailboxes.get(alice.id, "INBOX")).id)

    async def test_delivery_publishes_an_event_after_commit(self):
        alice = await self.make_account("alice@example.com")
        received = []
        self.store.events.subscribe(received.append)
        await _wait_for(lambda: self.store.events.connected)
        [r] = await self.deliver(["alice@example.com"])
        await _wait_for(lambda: received)
        self.assertEqual(received[0].type, events.MESSAGE_ADDED)
        self.assertEqual(received[0].data["account_id"], alice.id)
        self.assertEqual(received[0].data["uid"], r.uid)


class MailboxChangeTests(StoreTestCase):
    async def setUp(self):
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        for _ in range(3):
            blob = await self.store.incoming(MESSAGE)
            await self.store.messages.deliver(blob, ["alice@example.com"])

    async def test_append_with_flags_and_date(self):
        import datetime

        when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        blob = await self.store.incoming(b"Subject: draft\r\n\r\nx\r\n")
        box, uid = await self.store.messages.append(
            self.alice.id,
            "Drafts",
            blob,
            flags=["\\Draft", "\\Seen", "$Label1"],
            internal_date=when,
        )
        self.assertEqual((box.name, uid), ("Drafts", 1))
        [info] = await self.store.messages.list(self.alice.id, box.id)
        self.assertEqual(info.flags, Flag.DRAFT | Flag.SEEN)
        self.assertEqual(info.keywords, ("$Label1",))
        self.assertEqual(info.internal_date, when)
        self.assertIn("/cur/", info.blob_path)
        drafts = await self.store.mailboxes.get(self.alice.id, "Drafts")
        self.assertEqual((drafts.unseen_count, drafts.message_count), (0, 1))
        self.assertEqual((box.id, box.uidvalidity), (drafts.id, drafts.uidvalidity))
        self.assertFalse(blob.path.exists())

    async def test_append_from_memory(self):
        """A message given as bytes is written, parsed and linked in one go; nothing is
        left under mail/tmp, and nothing at all when the mailbox is missing."""
        from a3mail.smtp.delivery import parse_json

        box, uid = await self.store.messages.append(
            self.alice.id, "Drafts", MESSAGE, parse=parse_json, flags=["\\Draft"]
        )
        [info] = await self.store.messages.list(self.alice.id, box.id)
        self.assertEqual((info.uid, info.size, info.flags), (uid, len(MESSAGE), Flag.DRAFT))
        self.assertEqual(await self.store.messages.read(info), MESSAGE)
        self.assertTrue(info.subject)
        self.assertEqual(list(self.store.blobs.tmp_files()), [])
        with self.assertRaises(NotFound):
            await self.store.messages.append(self.alice.id, "Missing", MESSAGE)
        files = list(self.store.blobs.account_files(self.alice.id))
        self.assertEqual([f for f in files if "/cur/" in f], [info.blob_path])
        self.assertEqual(list(self.store.blobs.tmp_files()), [])

    async def test_append_to_a_missing_mailbox_is_not_found(self):
        blob = await self.store.incoming(MESSAGE)
        with self.assertRaises(NotFound):
            await self.store.messages.append(self.alice.id, "Missing", blob)
        self.assertFalse(blob.path.exists())  # consumed whatever the outcome
        files = list(self.store.blobs.account_files(self.alice.id))
        self.assertEqual([f for f in files if "/cur/" in f], [])  # the link is removed too

    async def test_append_over_quota(self):
        await self.store.accounts.set_quota(self.alice.id, len(MESSAGE) * 3 + 1)
        blob = await self.store.incoming(MESSAGE)
        with self.assertRaises(OverQuota):
            await self.store.messages.append(self.alice.id, "INBOX", blob)

    async def test_copy_allocates_new_uids_and_keeps_flags(self):
        await self.store.messages.store_flags(self.alice.id, self.inbox.id, [2], "+", ["\\Flagged"])
        result = await self.store.messages.copy(self.alice.id, self.inbox.id, [3, 2], "Archive")
        archive = await self.store.mailboxes.get(self.alice.id, "Archive")
        self.assertEqual(result.uidvalidity, archive.uidvalidity)
        self.assertEqual((result.source_uids, result.dest_uids), ((2, 3), (1, 2)))
        infos = await self.store.messages.list(self.alice.id, archive.id)
        self.assertEqual([i.flags for i in infos], [Flag.FLAGGED, 0])
        self.assertEqual(await self.store.messages.read(infos[0]), MESSAGE)
        self.assertEqual(archive.message_count, 2)
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual(account.message_count, 5)
        self.assertEqual(account.used_bytes, 5 * len(MESSAGE))

    async def test_copy_over_quota_is_refused(self):
        await self.store.accounts.set_quota(self.alice.id, len(MESSAGE) * 4)
        with self.assertRaises(OverQuota):
            await self.store.messages.copy(self.alice.id, self.inbox.id, [1, 2], "Archive")

    async def test_move_removes_from_the_source(self):
        result = await self.store.messages.copy(
            self.alice.id, self.inbox.id, [1, 3], "Trash", move=True
        )
        self.assertEqual(result.dest_uids, (1, 2))
        left = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.assertEqual([i.uid for i in left], [2])
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual((inbox.message_count, inbox.unseen_count), (1, 1))
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual((account.message_count, account.used_bytes), (3, 3 * len(MESSAGE)))
        self.assertEqual(
            await self.store.messages.expunged_since(self.alice.id, self.inbox.id, 0), [1, 3]
        )

    async def test_copy_into_another_accounts_mailbox_is_impossible(self):
        bob = await self.make_account("bob@example.com")
        with self.assertRaises(NotFound):
            await self.store.messages.copy(bob.id, self.inbox.id, [1], "INBOX")

    async def test_store_flags_modes_and_modseq(self):
        before = (await self.store.mailboxes.get(self.alice.id, "INBOX")).highestmodseq
        changed, failed = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1, 2], "+", ["\\Seen", "Work"]
        )
        self.assertEqual([c.uid for c in changed], [1, 2])
        self.assertEqual(changed[0].flags, Flag.SEEN)
        self.assertEqual(changed[0].keywords, ("Work",))
        self.assertEqual(failed, [])
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(inbox.unseen_count, 1)
        self.assertEqual(inbox.highestmodseq, before + 1)
        self.assertEqual(changed[0].modseq, inbox.highestmodseq)
        # Setting what is already set changes nothing and does not bump the modseq.
        again, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1], "+", ["\\Seen"]
        )
        self.assertEqual(again, [])
        removed, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1], "-", ["\\Seen", "Work"]
        )
        self.assertEqual((removed[0].flags, removed[0].keywords), (0, ()))
        replaced, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [2, 3], "=", ["\\Answered"]
        )
        self.assertEqual(
            [(c.uid, c.flags, c.keywords) for c in replaced],
            [(2, Flag.ANSWERED, ()), (3, Flag.ANSWERED, ())],
        )
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(inbox.unseen_count, 3)

    async def test_unchanged_since_refuses_modified_messages(self):
        first, _ = await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1], "+", ["\\Flagged"]
        )
        changed, failed = await self.store.messages.store_flags(
            self.alice.id,
            self.inbox.id,
            [1, 2],
            "+",
            ["\\Seen"],
            unchanged_since=first[0].modseq - 1,
        )
        self.assertEqual(([c.uid for c in changed], failed), ([2], [1]))

    async def test_expunge_only_deleted_messages(self):
        await self.store.messages.store_flags(
            self.alice.id, self.inbox.id, [1, 3], "+", ["\\Deleted"]
        )
        paths = [i.blob_path for i in await self.store.messages.list(self.alice.id, self.inbox.id)]
        removed = await self.store.messages.expunge(self.alice.id, self.inbox.id)
        self.assertEqual(removed, [1, 3])
        self.assertFalse((self.data_dir / paths[0]).exists())
        self.assertTrue((self.data_dir / paths[1]).exists())
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual((inbox.message_count, inbox.uidnext), (1, 4))
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual(account.used_bytes, len(MESSAGE))

    async def test_expunge_by_uid_without_deleted_flag(self):
        removed = await self.store.messages.expunge(
            self.alice.id, self.inbox.id, [2], only_deleted=False
        )
        self.assertEqual(removed, [2])
        left = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.assertEqual([i.uid for i in left], [1, 3])

    async def test_deleting_a_mailbox_frees_quota_and_files(self):
        await self.store.messages.copy(self.alice.id, self.inbox.id, [1, 2], "Archive")
        archive = await self.store.mailboxes.get(self.alice.id, "Archive")
        paths = [i.blob_path for i in await self.store.messages.list(self.alice.id, archive.id)]
        await self.store.mailboxes.delete(self.alice.id, "Archive")
        self.assertFalse(any((self.data_dir / p).exists() for p in paths))
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual((account.message_count, account.used_bytes), (3, 3 * len(MESSAGE)))

    async def test_deleting_an_account_removes_its_files(self):
        await self.store.accounts.delete(self.alice.id)
        self.assertFalse((self.data_dir / self.store.blobs.account_dir(self.alice.id)).exists())


async def _wait_for(predicate, timeout=5.0):
    from twisted.internet import reactor, task

    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not met in time")
        await task.deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


class ReadManyTests(StoreTestCase):
    """Messages.read_many: the page cache first, the rest in one worker-thread call."""

    async def setUp(self):
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.bodies = [MESSAGE + b"x" * n + b"\r\n" for n in range(3)]
        for body in self.bodies:
            blob = await self.store.incoming(body)
            await self.store.messages.deliver(blob, ["alice@example.com"])
        self.infos = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.threaded = []
        context = type(self.store.ctx)
        real = context.in_thread

        async def in_thread(ctx, fn, *args):
            self.threaded.append(args)
            return await real(ctx, fn, *args)

        self.patch(context, "in_thread", in_thread)

    async def test_cached_files_need_no_thread(self):
        if blobs._NOWAIT is None:
            raise SkipTest("this system has no RWF_NOWAIT")
        self.assertEqual(await self.store.messages.read_many(self.infos), self.bodies)
        headers = await self.store.messages.read_many(self.infos, [4, 4, 4])
        self.assertEqual(headers, [b"From"] * 3)
        self.assertEqual(self.threaded, [])

    async def test_from_the_first_uncached_file_on_the_thread_reads(self):
        real = os.preadv
        second = os.path.getsize(self.store.blobs.path(self.infos[1].blob_path))

        def preadv(fd, buffers, offset, flags=0):
            if os.fstat(fd).st_size == second:
                raise BlockingIOError(errno.EAGAIN, "not cached")
            return real(fd, buffers, offset, flags)

        self.patch(os, "preadv", preadv)
        self.assertEqual(await self.store.messages.read_many(self.infos), self.bodies)
        [(paths, sizes)] = self.threaded
        self.assertEqual(paths, [i.blob_path for i in self.infos[1 if blobs._NOWAIT else 0 :]])
        self.assertEqual(sizes, [len(b) for b in self.bodies[1 if blobs._NOWAIT else 0 :]])
