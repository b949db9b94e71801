"""MULTIAPPEND (RFC 3502): several messages in one APPEND, appended all or none."""

from __future__ import annotations

from tests.imap.support import MESSAGE, ImapTestCase, tagged

BIG = b"Subject: big\r\n\r\n" + b"y" * 100_000 + b"\r\n"


def literal(data: bytes) -> bytes:
    return b"{%d+}\r\n%s" % (len(data), data)


class MultiAppendTests(ImapTestCase):
    async def inbox_messages(self):
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        return inbox, await self.store.messages.list(self.alice.id, inbox.id)

    async def test_messages_with_their_own_flags_and_dates_get_a_uid_set(self):
        proto = await self.session(select=None)
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertIn(b" MULTIAPPEND", out)
        second = MESSAGE.replace(b"hello", b"second")
        out = await self.send(
            proto,
            b"a APPEND INBOX (\\Seen) "
            + literal(MESSAGE)
            + b' ($Two) " 7-Feb-1994 21:52:25 -0800" '
            + literal(second)
            + b" "
            + literal(BIG)
            + b"\r\n",
        )
        inbox, infos = await self.inbox_messages()
        self.assertEqual(
            tagged(out, b"a"), b"OK [APPENDUID %d 1:3] APPEND completed" % inbox.uidvalidity
        )
        self.assertEqual([i.flag_names for i in infos], [("\\Seen",), ("$Two",), ()])
        self.assertEqual(infos[1].internal_date.year, 1994)
        contents = [await self.store.messages.read(i) for i in infos]
        self.assertEqual(contents, [MESSAGE, second, BIG])
        self.assertEqual((inbox.message_count, inbox.unseen_count), (3, 2))

    async def test_two_spooled_messages_each_in_its_own_file(self):
        other = BIG.replace(b"big", b"other")
        proto = await self.session(select=None)
        out = await self.send(proto, b"a APPEND INBOX " + literal(BIG) + b" " + literal(other))
        out += await self.send(proto, b"\r\n")
        self.assertIn(b"a OK [APPENDUID", out)
        _, infos = await self.inbox_messages()
        self.assertEqual([await self.store.messages.read(i) for i in infos], [BIG, other])
        self.assertEqual(list((self.data_dir / "mail" / "tmp").iterdir()), [])

    async def test_a_mailbox_name_sent_as_a_literal_is_not_taken_for_a_message(self):
        proto = await self.session(select=None)
        out = await self.send(
            proto, b"a APPEND " + literal(b"INBOX") + b" " + literal(BIG) + b" " + literal(MESSAGE)
        )
        out += await self.send(proto, b"\r\n")
        self.assertIn(b"a OK [APPENDUID", out)
        _, infos = await self.inbox_messages()
        self.assertEqual([await self.store.messages.read(i) for i in infos], [BIG, MESSAGE])

    async def test_over_quota_appends_none_and_leaves_no_file(self):
        await self.store.accounts.set_quota("alice@example.com", len(MESSAGE) + 50)
        proto = await self.session()
        out = await self.send(
            proto, b"a APPEND INBOX " + literal(MESSAGE) + b" " + literal(MESSAGE) + b"\r\n"
        )
        self.assertEqual(tagged(out, b"a"), b"NO [OVERQUOTA] Quota exceeded")
        self.assertNotIn(b"EXISTS", out)
        inbox, infos = await self.inbox_messages()
        self.assertEqual((infos, inbox.message_count, inbox.uidnext), ([], 0, 1))
        account = await self.store.accounts.get(self.alice.id)
        self.assertEqual((account.used_bytes, account.message_count), (0, 0))
        self.assertEqual(list(self.store.blobs.account_files(self.alice.id)), [])
        self.assertEqual(list((self.data_dir / "mail" / "tmp").iterdir()), [])
        out = await self.send(proto, b"b APPEND INBOX " + literal(MESSAGE) + b"\r\n")
        self.assertIn(b"* 1 EXISTS\r\nb OK [APPENDUID", out)  # one still fits

    async def test_missing_mailbox_and_empty_message_append_none(self):
        proto = await self.session(select=None)
        out = await self.send(
            proto, b"a APPEND Nope " + literal(MESSAGE) + b" " + literal(BIG) + b"\r\n"
        )
        self.assertEqual(tagged(out, b"a"), b"NO [TRYCREATE] No such mailbox")
        out = await self.send(
            proto, b"b APPEND INBOX " + literal(BIG) + b" " + literal(b"") + b"\r\n"
        )
        self.assertEqual(tagged(out, b"b"), b"NO Empty message")
        _, infos = await self.inbox_messages()
        self.assertEqual(infos, [])
        self.assertEqual(list((self.data_dir / "mail" / "tmp").iterdir()), [])

    async def test_the_selected_session_sees_every_new_message_at_once(self):
        await self.deliver()
        proto = await self.session()
        out = await self.send(
            proto, b"a APPEND INBOX " + literal(MESSAGE) + b" (\\Flagged) " + literal(MESSAGE)
        )
        out += await self.send(proto, b"\r\n")
        self.assertIn(b"* 3 EXISTS\r\na OK [APPENDUID", out)
        out = await self.send(proto, b"b FETCH 2:3 (FLAGS)\r\n")
        self.assertIn(b"* 3 FETCH (FLAGS (\\Flagged))", out)

    async def test_malformed_lists_are_bad(self):
        proto = await self.session(select=None)
        for bad in (
            b"a APPEND INBOX " + literal(MESSAGE) + b" (\\Seen)\r\n",  # flags, no message
            b'a APPEND INBOX "1-Jan-2020 00:00:00 +0000" (\\Seen) ' + literal(MESSAGE) + b"\r\n",
            b"a APPEND INBOX (\\Seen) (\\Draft) " + literal(MESSAGE) + b"\r\n",
        ):
            out = await self.send(proto, bad)
            self.assertTrue(tagged(out, b"a").startswith(b"BAD"), (bad, out))
        _, infos = await self.inbox_messages()
        self.assertEqual(infos, [])
