"""Mailbox operations: create, rename, delete, subscribe, special use, per-account isolation."""

from __future__ import annotations

from a3mail.store.records import AlreadyExists, Conflict, InvalidName, NotFound
from tests.support.store import StoreTestCase

MESSAGE = b"From: bob@remote.example\r\nSubject: boxes\r\n\r\nHello.\r\n"


class MailboxTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")

    async def names(self, account_id=None):
        return [b.name for b in await self.store.mailboxes.list(account_id or self.alice.id)]

    async def deliver(self, address="alice@example.com", data=MESSAGE):
        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, [address])
        return result

    async def test_create_makes_missing_parents(self):
        box = await self.store.mailboxes.create(self.alice.id, "Work/Projects/2026")
        self.assertEqual(box.name, "Work/Projects/2026")
        names = await self.names()
        for name in ("Work", "Work/Projects", "Work/Projects/2026"):
            self.assertIn(name, names)
        self.assertEqual(names[0], "INBOX")
        # An existing parent is reused, not duplicated.
        await self.store.mailboxes.create(self.alice.id, "Work/Other")
        self.assertEqual((await self.names()).count("Work"), 1)
        created = await self.store.mailboxes.get(self.alice.id, "Work/Projects")
        self.assertEqual(
            (created.uidnext, created.message_count, created.special_use), (1, 0, None)
        )
        self.assertTrue(created.subscribed)

    async def test_create_existing_is_already_exists(self):
        await self.store.mailboxes.create(self.alice.id, "Lists")
        for name in ("Lists", "INBOX", "inbox", "Sent"):
            with self.assertRaises(AlreadyExists, msg=name):
                await self.store.mailboxes.create(self.alice.id, name)

    async def test_invalid_names_are_refused(self):
        bad = ["", "/x", "x/", "a//b", "a\x00b", "a\tb", "bell\x07", "del\x7f", "\r\n", "x" * 513]
        for name in bad:
            with self.assertRaises(InvalidName, msg=repr(name)):
                await self.store.mailboxes.create(self.alice.id, name)
            with self.assertRaises(InvalidName, msg=repr(name)):
                await self.store.mailboxes.rename(self.alice.id, "Sent", name)
        self.assertIn("Sent", await self.names())

    async def test_unknown_special_use_is_refused(self):
        with self.assertRaises(InvalidName):
            await self.store.mailboxes.create(self.alice.id, "Stuff", special_use="\\Important")

    async def test_inbox_is_case_insensitive(self):
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        for name in ("inbox", "Inbox", "iNbOx"):
            self.assertEqual((await self.store.mailboxes.get(self.alice.id, name)).id, inbox.id)
        sub = await self.store.mailboxes.create(self.alice.id, "Inbox/Sub")
        self.assertEqual(sub.name, "INBOX/Sub")
        self.assertEqual((await self.store.mailboxes.get(self.alice.id, "inbox/Sub")).id, sub.id)
        # Only the first level is special: other names keep their case.
        other = await self.store.mailboxes.create(self.alice.id, "Projects/inbox")
        self.assertEqual(other.name, "Projects/inbox")
        with self.assertRaises(NotFound):
            await self.store.mailboxes.get(self.alice.id, "INBOX/sub")

    async def test_rename_with_children(self):
        await self.store.mailboxes.create(self.alice.id, "a/b/c")
        await self.store.mailboxes.create(self.alice.id, "ab/x")  # shares a prefix, no child
        before = {b.name: b for b in await self.store.mailboxes.list(self.alice.id)}
        renamed = await self.store.mailboxes.rename(self.alice.id, "a", "z/y")
        self.assertEqual(renamed.name, "z/y")
        after = {b.name: b for b in await self.store.mailboxes.list(self.alice.id)}
        for old, new in (("a", "z/y"), ("a/b", "z/y/b"), ("a/b/c", "z/y/b/c")):
            self.assertNotIn(old, after)
            self.assertEqual(after[new].id, before[old].id)
            self.assertNotEqual(after[new].uidvalidity, before[old].uidvalidity)
        self.assertIn("z", after)  # the new parent was created
        self.assertEqual(after["ab"].id, before["ab"].id)
        self.assertEqual(after["ab/x"].uidvalidity, before["ab/x"].uidvalidity)

    async def test_like_wildcards_in_names_are_literal(self):
        for name in ("a_/x", "ab/x", "100%/y", "1000/y"):
            await self.store.mailboxes.create(self.alice.id, name)
        await self.store.mailboxes.rename(self.alice.id, "a_", "renamed")
        await self.store.mailboxes.rename(self.alice.id, "100%", "pct")
        names = await self.names()
        for name in ("renamed/x", "ab/x", "pct/y", "1000/y"):
            self.assertIn(name, names)
        await self.store.mailboxes.delete(self.alice.id, "renamed/x")
        await self.store.mailboxes.delete(self.alice.id, "renamed")  # "ab/x" is no child of it
        await self.store.mailboxes.create(self.alice.id, "a_")
        await self.store.mailboxes.delete(self.alice.id, "a_")
        self.assertIn("ab/x", await self.names())

    async def test_rename_keeps_messages(self):
        await self.store.mailboxes.create(self.alice.id, "Old")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.append(self.alice.id, "Old", blob)
        await self.store.mailboxes.rename(self.alice.id, "Old", "New")
        box = await self.store.mailboxes.get(self.alice.id, "New")
        [info] = await self.store.messages.list(self.alice.id, box.id)
        self.assertEqual(await self.store.messages.read(info), MESSAGE)
        self.assertEqual((box.message_count, box.total_bytes), (1, len(MESSAGE)))

    async def test_rename_refusals(self):
        await self.store.mailboxes.create(self.alice.id, "a/b")
        with self.assertRaises(AlreadyExists):
            await self.store.mailboxes.rename(self.alice.id, "a", "Sent")
        with self.assertRaises(InvalidName):
            await self.store.mailboxes.rename(self.alice.id, "a", "a/b/c")
        with self.assertRaises(NotFound):
            await self.store.mailboxes.rename(self.alice.id, "nope", "other")
        self.assertIn("a/b", await self.names())

    async def test_rename_inbox_moves_its_messages_and_leaves_it_empty(self):
        await self.store.mailboxes.create(self.alice.id, "INBOX/Keep")
        old_inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        results = [await self.deliver(data=MESSAGE + str(i).encode()) for i in range(3)]
        moved = await self.store.mailboxes.rename(self.alice.id, "inbox", "Old Mail")
        self.assertEqual(moved.name, "Old Mail")
        self.assertEqual(moved.id, old_inbox.id)
        self.assertEqual(moved.message_count, 3)
        infos = await self.store.messages.list(self.alice.id, moved.id)
        self.assertEqual([i.uid for i in infos], [r.uid for r in results])
        for i, info in enumerate(infos):
            self.assertEqual(await self.store.messages.read(info), MESSAGE + str(i).encode())
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertNotEqual(inbox.id, old_inbox.id)
        self.assertEqual((inbox.message_count, inbox.total_bytes, inbox.uidnext), (0, 0, 1))
        self.assertEqual(await self.store.messages.list(self.alice.id, inbox.id), [])
        # INBOX's children stay where they are; new mail goes to the new INBOX.
        self.assertIn("INBOX/Keep", await self.names())
        after = await self.deliver()
        self.assertEqual(after.mailbox_id, inbox.id)
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual(account.message_count, 4)

    async def test_delete(self):
        await self.store.mailboxes.create(self.alice.id, "Tmp")
        blob = await self.store.incoming(MESSAGE)
        _, _uid = await self.store.messages.append(self.alice.id, "Tmp", blob)
        box = await self.store.mailboxes.get(self.alice.id, "Tmp")
        [info] = await self.store.messages.list(self.alice.id, box.id)
        await self.store.mailboxes.delete(self.alice.id, "Tmp")
        self.assertNotIn("Tmp", await self.names())
        self.assertFalse((self.data_dir / info.blob_path).exists())
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual((account.used_bytes, account.message_count), (0, 0))
        with self.assertRaises(NotFound):
            await self.store.mailboxes.delete(self.alice.id, "Tmp")

    async def test_delete_with_children_conflicts(self):
        await self.store.mailboxes.create(self.alice.id, "Parent/Child")
        with self.assertRaises(Conflict):
            await self.store.mailboxes.delete(self.alice.id, "Parent")
        self.assertIn("Parent", await self.names())
        await self.store.mailboxes.delete(self.alice.id, "Parent/Child")
        await self.store.mailboxes.delete(self.alice.id, "Parent")
        self.assertNotIn("Parent", await self.names())

    async def test_delete_inbox_conflicts(self):
        await self.deliver()
        for name in ("INBOX", "inbox"):
            with self.assertRaises(Conflict):
                await self.store.mailboxes.delete(self.alice.id, name)
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(inbox.message_count, 1)

    async def test_subscribe_and_unsubscribe(self):
        await self.store.mailboxes.create(self.alice.id, "News")
        await self.store.mailboxes.subscribe(self.alice.id, "News", False)
        self.assertFalse((await self.store.mailboxes.get(self.alice.id, "News")).subscribed)
        await self.store.mailboxes.subscribe(self.alice.id, "News")
        self.assertTrue((await self.store.mailboxes.get(self.alice.id, "News")).subscribed)
        await self.store.mailboxes.subscribe(self.alice.id, "inbox", False)
        self.assertFalse((await self.store.mailboxes.get(self.alice.id, "INBOX")).subscribed)
        with self.assertRaises(NotFound):
            await self.store.mailboxes.subscribe(self.alice.id, "Nope")

    async def test_get_by_special_use(self):
        sent = await self.store.mailboxes.get_by_special_use(self.alice.id, "\\Sent")
        self.assertEqual((sent.name, sent.special_use), ("Sent", "\\Sent"))
        self.assertIsNone(await self.store.mailboxes.get_by_special_use(self.alice.id, "\\Flagged"))
        flagged = await self.store.mailboxes.create(self.alice.id, "Starred", "\\Flagged")
        found = await self.store.mailboxes.get_by_special_use(self.alice.id, "\\Flagged")
        self.assertEqual(found.id, flagged.id)

    async def test_unknown_account(self):
        with self.assertRaises(NotFound):
            await self.store.mailboxes.create(987654, "X")
        self.assertEqual(await self.store.mailboxes.list(987654), [])


class IsolationTests(StoreTestCase):
    """Names are per account, and no call of account B reaches a mailbox of account A."""

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.a = await self.make_account("a@example.com")
        self.b = await self.make_account("b@example.com")
        self.private = await self.store.mailboxes.create(self.a.id, "Private/Inner")
        self.a_inbox = await self.store.mailboxes.get(self.a.id, "INBOX")
        blob = await self.store.incoming(MESSAGE)
        [self.delivered] = await self.store.messages.deliver(blob, ["a@example.com"])

    async def assertAUntouched(self) -> None:
        names = [b.name for b in await self.store.mailboxes.list(self.a.id)]
        self.assertIn("Private", names)
        self.assertIn("Private/Inner", names)
        inner = await self.store.mailboxes.get(self.a.id, "Private/Inner")
        self.assertEqual(
            (inner.id, inner.uidvalidity, inner.subscribed),
            (self.private.id, self.private.uidvalidity, True),
        )
        inbox = await self.store.mailboxes.get(self.a.id, "INBOX")
        self.assertEqual((inbox.id, inbox.message_count), (self.a_inbox.id, 1))
        [info] = await self.store.messages.list(self.a.id, inbox.id)
        self.assertEqual(await self.store.messages.read(info), MESSAGE)

    async def test_by_name(self):
        with self.assertRaises(NotFound):
            await self.store.mailboxes.get(self.b.id, "Private")
        with self.assertRaises(NotFound):
            await self.store.mailboxes.rename(self.b.id, "Private", "Mine")
        with self.assertRaises(NotFound):
            await self.store.mailboxes.delete(self.b.id, "Private/Inner")
        with self.assertRaises(NotFound):
            await self.store.mailboxes.subscribe(self.b.id, "Private/Inner", False)
        blob = await self.store.incoming(MESSAGE)
        with self.assertRaises(NotFound):
            await self.store.messages.append(self.b.id, "Private/Inner", blob)
        b_inbox = await self.store.mailboxes.get(self.b.id, "INBOX")
        with self.assertRaises(NotFound):
            await self.store.messages.copy(self.b.id, b_inbox.id, [1], "Private/Inner")
        self.assertEqual(list(self.store.blobs.account_files(self.b.id)), [])
        await self.assertAUntouched()

    async def test_names_are_per_account(self):
        mine = await self.store.mailboxes.create(self.b.id, "Private/Inner")
        self.assertNotEqual(mine.id, self.private.id)
        await self.store.mailboxes.rename(self.b.id, "Private", "Renamed")
        await self.store.mailboxes.delete(self.b.id, "Renamed/Inner")
        await self.store.mailboxes.rename(self.b.id, "INBOX", "B Old")
        await self.assertAUntouched()

    async def test_by_id(self):
        self.assertEqual(await self.store.messages.list(self.b.id, self.a_inbox.id), [])
        with self.assertRaises(NotFound):
            await self.store.messages.get(self.b.id, self.a_inbox.id, self.delivered.uid)
        with self.assertRaises(NotFound):
            await self.store.messages.copy(
                self.b.id, self.a_inbox.id, [self.delivered.uid], "INBOX"
            )
        with self.assertRaises(NotFound):
            await self.store.messages.copy(
                self.b.id, self.a_inbox.id, [self.delivered.uid], "INBOX", move=True
            )
        with self.assertRaises(NotFound):
            await self.store.messages.store_flags(
                self.b.id, self.a_inbox.id, [self.delivered.uid], "+", ["\\Deleted"]
            )
        with self.assertRaises(NotFound):
            await self.store.messages.expunge(
                self.b.id, self.a_inbox.id, [self.delivered.uid], only_deleted=False
            )
        self.assertEqual(
            await self.store.messages.expunged_since(self.b.id, self.a_inbox.id, 0), []
        )
        b_inbox = await self.store.mailboxes.get(self.b.id, "INBOX")
        self.assertEqual(b_inbox.message_count, 0)
        self.assertEqual(list(self.store.blobs.account_files(self.b.id)), [])
        b = await self.store.accounts.get(self.b.id)
        self.assertEqual((b.used_bytes, b.message_count), (0, 0))
        await self.assertAUntouched()
