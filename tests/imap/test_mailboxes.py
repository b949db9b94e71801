"""In-memory IMAP sessions: CREATE, DELETE, RENAME, SUBSCRIBE, LIST (extended), LSUB,
STATUS, and mailbox-name isolation."""

from __future__ import annotations

import time

from tests.imap.support import ImapTestCase, tagged


class MailboxTests(ImapTestCase):
    async def names(self) -> list[str]:
        return [m.name for m in await self.store.mailboxes.list(self.alice.id)]

    async def test_create_delete_rename(self):
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b"a CREATE Work/2024/\r\nb CREATE Work\r\nc RENAME Work/2024 Work/Old\r\n"
            b"d DELETE Work/Old\r\ne DELETE INBOX\r\nf CREATE inbox\r\n",
        )
        self.assertEqual(tagged(out, b"a"), b"OK CREATE completed")
        self.assertEqual(tagged(out, b"b"), b"NO [ALREADYEXISTS] Mailbox already exists")
        self.assertEqual(tagged(out, b"c"), b"OK RENAME completed")
        self.assertEqual(tagged(out, b"d"), b"OK DELETE completed")
        self.assertTrue(tagged(out, b"e").startswith(b"NO"))
        self.assertTrue(tagged(out, b"f").startswith(b"NO [ALREADYEXISTS]"))
        names = await self.names()
        self.assertIn("Work", names)
        self.assertNotIn("Work/Old", names)

    async def test_rename_inbox_moves_messages(self):
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b"a RENAME INBOX Saved\r\nb STATUS Saved (MESSAGES)\r\nc STATUS INBOX (MESSAGES)\r\n",
        )
        self.assertIn(b'* STATUS "Saved" (MESSAGES 1)', out)
        self.assertIn(b'* STATUS "INBOX" (MESSAGES 0)', out)

    async def test_modified_utf7_names(self):
        proto = await self.session(select=None)
        out = await self.send(proto, b'a CREATE Entw&APw-rfe\r\nb LIST "" Entw*\r\n')
        self.assertIn("Entwürfe", await self.names())
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"\r\n', out)

    async def test_names_outside_the_account_are_refused(self):
        await self.make_account("bob@example.com")
        proto = await self.session(select=None)
        for name in (
            b"../x",
            b"#users/bob/INBOX",
            b"bob@example.com/INBOX",
            b"~bob",
            b"{5}\r\na\x00b\rc",
        ):
            for command in (b"SELECT", b"CREATE", b"STATUS", b"DELETE"):
                args = b" (MESSAGES)" if command == b"STATUS" else b""
                out = await self.send(proto, b"t %s %s%s\r\n" % (command, name, args))
                self.assertTrue(tagged(out, b"t").startswith(b"NO"), (command, name, out))
        self.assertNotIn("../x", await self.names())

    async def test_subscribe_lsub(self):
        await self.store.mailboxes.create(self.alice.id, "Lists")
        proto = await self.session(select=None)
        out = await self.send(
            proto, b'a UNSUBSCRIBE Lists\r\nb LSUB "" *\r\nc SUBSCRIBE Lists\r\nd LSUB "" L*\r\n'
        )
        self.assertNotIn(b'"Lists"', out.split(b"b OK")[0])
        self.assertIn(b'* LSUB () "/" "Lists"\r\nd OK', out)

    async def test_list_basics(self):
        await self.store.mailboxes.create(self.alice.id, "Work/Projects")
        proto = await self.session(select=None)
        out = await self.send(proto, b'a LIST "" ""\r\nb LIST "" %\r\nc LIST Work/ *\r\n')
        self.assertIn(b'* LIST (\\Noselect) "/" ""\r\na OK', out)
        second = out.split(b"a OK LIST completed\r\n")[1].split(b"b OK")[0]
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "INBOX"', second)
        self.assertIn(b'* LIST (\\HasChildren) "/" "Work"', second)
        self.assertNotIn(b"Work/Projects", second)
        third = out.split(b"b OK LIST completed\r\n")[1]
        self.assertEqual(
            third, b'* LIST (\\HasNoChildren) "/" "Work/Projects"\r\nc OK LIST completed\r\n'
        )

    async def test_list_extended_special_use_and_status(self):
        await self.store.mailboxes.create(self.alice.id, "Sent Items", special_use="\\Sent")
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(proto, b'a LIST (SPECIAL-USE) "" *\r\n')
        self.assertIn(b'\\Sent) "/" "Sent Items"', out)
        self.assertNotIn(b'"INBOX"', out)
        out = await self.send(
            proto, b'b LIST "" (INBOX "Sent*") RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN))\r\n'
        )
        self.assertIn(
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n'
            b'* STATUS "INBOX" (MESSAGES 1 UNSEEN 1)\r\n',
            out,
        )
        self.assertIn(b'"Sent Items"', out)
        out = await self.send(proto, b'c LIST (BOGUS) "" *\r\n')
        self.assertTrue(tagged(out, b"c").startswith(b"BAD"))

    async def test_status(self):
        await self.deliver()
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)\r\n"
            b"b STATUS INBOX (FROB)\r\nc STATUS Nope (MESSAGES)\r\n",
        )
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertIn(
            b'* STATUS "INBOX" (MESSAGES 2 RECENT 0 UIDNEXT 3 UIDVALIDITY %d UNSEEN 2'
            b" HIGHESTMODSEQ %d SIZE %d)\r\n"
            % (inbox.uidvalidity, inbox.highestmodseq, inbox.total_bytes),
            out,
        )
        self.assertTrue(tagged(out, b"b").startswith(b"BAD"))
        self.assertTrue(tagged(out, b"c").startswith(b"NO"))

    async def test_hostile_list_pattern_is_cheap(self):
        await self.store.mailboxes.create(self.alice.id, "a" * 200)
        proto = await self.session(select=None)
        started = time.perf_counter()
        out = await self.send(proto, b'a LIST "" "' + b"*a" * 60 + b'b"\r\n')
        self.assertLess(time.perf_counter() - started, 2.0)
        self.assertEqual(out, b"a OK LIST completed\r\n")
        out = await self.send(proto, b'b LIST "" "' + b"%" * 2000 + b'"\r\n')
        self.assertTrue(tagged(out, b"b").startswith(b"BAD"))
