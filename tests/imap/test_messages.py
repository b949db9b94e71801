"""In-memory IMAP sessions: APPEND, FETCH, STORE, COPY, MOVE, EXPUNGE, SEARCH, CLOSE."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.imap.support import MESSAGE, ImapTestCase, message, tagged
from tests.imap.test_updates import wait_for


class AppendTests(ImapTestCase):
    async def test_append_without_flags_gives_appenduid(self):
        proto = await self.session(select=None)
        out = await self.send(proto, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(
            tagged(out, b"a"), b"OK [APPENDUID %d 1] APPEND completed" % inbox.uidvalidity
        )
        [info] = await self.store.messages.list(self.alice.id, inbox.id)
        self.assertEqual(await self.store.messages.read(info), MESSAGE)
        self.assertEqual(info.subject, "hello")

    async def test_append_with_flags_and_date(self):
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b'a APPEND INBOX (\\Seen $Work) " 7-Feb-1994 21:52:25 -0800" {%d+}\r\n%s\r\n'
            % (len(MESSAGE), MESSAGE),
        )
        self.assertIn(b"a OK [APPENDUID", out)
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        [info] = await self.store.messages.list(self.alice.id, inbox.id)
        self.assertEqual(info.flag_names, ("\\Seen", "$Work"))
        expected = datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))
        self.assertEqual(info.internal_date, expected)

    async def test_append_to_missing_mailbox_trycreate(self):
        proto = await self.session(select=None)
        out = await self.send(proto, b"a APPEND Nope {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        self.assertEqual(tagged(out, b"a"), b"NO [TRYCREATE] No such mailbox")
        self.assertEqual(list((self.data_dir / "mail" / "tmp").iterdir()), [])

    async def test_append_over_quota(self):
        await self.store.accounts.set_quota("alice@example.com", 100)
        proto = await self.session(select=None)
        out = await self.send(proto, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        self.assertEqual(tagged(out, b"a"), b"NO [OVERQUOTA] Quota exceeded")

    async def test_big_append_spools_to_file_and_is_limited(self):
        body = b"Subject: big\r\n\r\n" + b"x" * 200_000 + b"\r\n"
        proto = await self.session(select=None)
        out = await self.send(proto, b"a APPEND INBOX {%d}\r\n" % len(body))
        self.assertEqual(out, b"+ Ready for literal data\r\n")
        proto.dataReceived(body[:100_000])
        self.assertLess(len(proto.reader.buffer), 70_000)  # went to the spool file
        out = await self.send(proto, body[100_000:] + b"\r\n")
        self.assertIn(b"a OK [APPENDUID", out)
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        [info] = await self.store.messages.list(self.alice.id, inbox.id)
        self.assertEqual(await self.store.messages.read(info), body)
        out = await self.send(proto, b"b APPEND INBOX {%d}\r\n" % (2 * 1024 * 1024))
        self.assertEqual(tagged(out, b"b"), b"NO [TOOBIG] Literal too large")

    async def test_append_reports_exists_to_the_selected_session(self):
        proto = await self.session()
        out = await self.send(proto, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        out += await self.send(proto, b"b NOOP\r\n")
        self.assertEqual(out.count(b"* 1 EXISTS\r\n"), 1)
        self.assertEqual(list(proto.selected.uids), [1])


class FetchTests(ImapTestCase):
    async def test_fetch_items(self):
        await self.deliver()
        proto = await self.session()
        out = await self.send(
            proto, b"a FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY.PEEK[HEADER])\r\n"
        )
        self.assertIn(b"UID 1", out)
        self.assertIn(b"RFC822.SIZE %d" % len(MESSAGE), out)
        self.assertIn(b'"hello"', out)
        header = MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.assertIn(b"BODY[HEADER] {%d}\r\n%s" % (len(header), header), out)
        self.assertEqual(tagged(out, b"a"), b"OK FETCH completed")
        out = await self.send(proto, b"b FETCH 1 FLAGS\r\n")
        self.assertIn(b"FLAGS ()", out)

    async def test_partial_and_seen(self):
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 1 BODY[]<0.10>\r\n")
        self.assertIn(b"BODY[]<0> {10}\r\n" + MESSAGE[:10], out)
        self.assertIn(b"FLAGS (\\Seen)", out)
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        [info] = await self.store.messages.list(self.alice.id, inbox.id)
        self.assertEqual(info.flag_names, ("\\Seen",))

    async def test_uid_fetch_and_changedsince(self):
        await self.deliver()
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a UID FETCH 2:* (FLAGS) (CHANGEDSINCE 1)\r\n")
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS () MODSEQ (", out)
        self.assertNotIn(b"* 1 FETCH", out)
        modseq = int(re.search(rb"MODSEQ \((\d+)\)", out).group(1))
        out = await self.send(proto, b"b UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % modseq)
        self.assertEqual(out, b"b OK FETCH completed\r\n")

    async def test_bad_sequence_numbers(self):
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 5 FLAGS\r\nb FETCH 1 (FLAGS\r\nc FETCH 1 BOGUS\r\n")
        self.assertTrue(tagged(out, b"a").startswith(b"BAD"))
        self.assertTrue(tagged(out, b"b").startswith(b"BAD"))
        self.assertTrue(tagged(out, b"c").startswith(b"BAD"))

    async def test_large_body_streams_from_the_file(self):
        big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 20_000
        await self.deliver(big)
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 1 BODY.PEEK[]\r\n")
        self.assertIn(b"BODY[] {%d}\r\n%s)\r\n" % (len(big), big), out)


class StoreTests(ImapTestCase):
    async def test_store_modes(self):
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a STORE 1 +FLAGS (\\Flagged $A)\r\n")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged $A) UID 1)\r\n", out)
        out = await self.send(proto, b"b STORE 1 -FLAGS.SILENT ($A)\r\n")
        self.assertEqual(out, b"b OK STORE completed\r\n")
        out = await self.send(proto, b"c UID STORE 1 FLAGS (\\Seen)\r\nd FETCH 1 FLAGS\r\n")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\nc OK", out)
        out = await self.send(proto, b"e STORE 1 +FLAGS (\\Recent)\r\n")
        self.assertTrue(tagged(out, b"e").startswith(b"BAD"))

    async def test_unchangedsince(self):
        await self.deliver()
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a STORE 2 +FLAGS (\\Seen)\r\n")
        out = await self.send(proto, b"b FETCH 1:2 MODSEQ\r\n")
        modseqs = [int(m) for m in re.findall(rb"MODSEQ \((\d+)\)", out)]
        out = await self.send(
            proto, b"c STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)\r\n" % modseqs[0]
        )
        self.assertEqual(tagged(out, b"c"), b"OK [MODIFIED 2] Conditional STORE failed")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged) UID 1 MODSEQ (", out)


class CopyMoveExpungeTests(ImapTestCase):
    async def test_copy_with_copyuid_and_trycreate(self):
        await self.deliver()
        await self.deliver()
        await self.store.mailboxes.create(self.alice.id, "Projects")
        archive = await self.store.mailboxes.get(self.alice.id, "Projects")
        proto = await self.session()
        out = await self.send(proto, b"a COPY 1:2 Projects\r\nb UID COPY 2 Nope\r\n")
        self.assertEqual(
            tagged(out, b"a"), b"OK [COPYUID %d 1:2 1:2] COPY completed" % archive.uidvalidity
        )
        self.assertEqual(tagged(out, b"b"), b"NO [TRYCREATE] No such mailbox")

    async def test_move(self):
        await self.deliver()
        await self.deliver()
        await self.deliver()
        await self.store.mailboxes.create(self.alice.id, "Projects")
        proto = await self.session()
        out = await self.send(proto, b"a MOVE 2:3 Projects\r\nb FETCH 1 UID\r\n")
        self.assertIn(b"* OK [COPYUID ", out)
        self.assertIn(b"* 3 EXPUNGE\r\n* 2 EXPUNGE\r\na OK MOVE completed", out)
        self.assertIn(b"* 1 FETCH (UID 1)", out)
        archive = await self.store.mailboxes.get(self.alice.id, "Projects")
        self.assertEqual(archive.message_count, 2)

    async def test_expunge_and_uid_expunge(self):
        for _ in range(4):
            await self.deliver()
        proto = await self.session()
        out = await self.send(
            proto, b"a STORE 1:4 +FLAGS.SILENT (\\Deleted)\r\nb UID EXPUNGE 3:4\r\n"
        )
        self.assertIn(b"* 4 EXPUNGE\r\n* 3 EXPUNGE\r\nb OK", out)
        out = await self.send(proto, b"c EXPUNGE\r\nd FETCH 1:* UID\r\n")
        self.assertIn(b"* 2 EXPUNGE\r\n* 1 EXPUNGE\r\nc OK", out)
        self.assertTrue(tagged(out, b"d").startswith(b"BAD"))  # no messages left

    async def test_close_expunges_silently_unselect_does_not(self):
        await self.deliver()
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"a STORE 1 +FLAGS.SILENT (\\Deleted)\r\nb UNSELECT\r\n")
        self.assertEqual(tagged(out, b"b"), b"OK UNSELECT completed")
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(inbox.message_count, 2)
        out = await self.send(proto, b"c SELECT INBOX\r\nd CLOSE\r\n")
        self.assertTrue(out.endswith(b"d OK CLOSE completed\r\n"))
        self.assertNotIn(b"EXPUNGE", out)
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.assertEqual(inbox.message_count, 1)


class SearchTests(ImapTestCase):
    async def test_search(self):
        await self.deliver(message("apples"))
        await self.deliver(message("pears"))
        await self.deliver(message("more apples"))
        proto = await self.session()
        out = await self.send(
            proto, b"a SEARCH SUBJECT apples\r\nb UID SEARCH 2:3 SUBJECT apples\r\n"
        )
        self.assertIn(b"* SEARCH 1 3\r\na OK", out)
        self.assertIn(b"* SEARCH 3\r\nb OK", out)
        out = await self.send(proto, b"c SEARCH SUBJECT nothing\r\n")
        self.assertEqual(out, b"* SEARCH\r\nc OK SEARCH completed\r\n")
        out = await self.send(proto, b"d SEARCH CHARSET KOI8-R ALL\r\ne SEARCH FROB\r\n")
        self.assertTrue(tagged(out, b"d").startswith(b"NO [BADCHARSET"))
        self.assertTrue(tagged(out, b"e").startswith(b"BAD"))


class ClientTranscriptTests(ImapTestCase):
    async def test_thunderbird_like_session(self):
        """The commands Thunderbird sends on start-up and when reading, as it sends them."""
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b'3 ID ("name" "Thunderbird" "version" "115.3.1")\r\n'
            b"4 ENABLE CONDSTORE\r\n"
            b'5 LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN SPECIAL-USE)\r\n'
            b'6 lsub "" "*"\r\n'
            b'7 getquotaroot "INBOX"\r\n'
            b'8 select "INBOX" (CONDSTORE)\r\n'
            b"9 UID fetch 1:* (FLAGS) (CHANGEDSINCE 1)\r\n"
            b"10 UID fetch 1 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc"
            b" Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To"
            b" Content-Type Reply-To)])\r\n"
            b"11 UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])\r\n"
            b"12 uid store 1 +Flags (\\Seen)\r\n"
            b'13 UID MOVE 1 "Trash"\r\n'
            b"14 UID SEARCH UNDELETED\r\n"
            b"15 noop\r\n",
        )
        for tag in range(3, 16):
            self.assertTrue(tagged(out, b"%d" % tag).startswith(b"OK"), (tag, out))
        self.assertIn(b'\\Trash) "/" "Trash"', out)
        self.assertIn(b"Subject: hello\r\n", out)
        self.assertIn(b"BODY[] {%d}\r\n%s" % (len(MESSAGE), MESSAGE), out)
        self.assertIn(b"* 1 EXPUNGE\r\n13 OK", out)
        self.assertIn(b"* SEARCH\r\n14 OK", out)


class FlowControlTests(ImapTestCase):
    async def test_fetch_waits_while_the_client_is_slow(self):
        """A big body goes out in chunks, and not faster than the transport takes them."""
        big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 40_000  # 640 kB
        await self.deliver(big)
        proto = await self.session()
        transport = proto.transport
        transport.clear()
        proto.dataReceived(b"a FETCH 1 BODY.PEEK[]\r\n")
        await wait_for(lambda: transport.producer is not None)
        transport.producer.pauseProducing()  # the socket buffer is full
        await wait_for(lambda: len(transport.value()) > 0)
        sent = len(transport.value())
        self.assertLess(sent, 200_000)
        await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(transport.value()), sent)  # nothing more while paused
        transport.producer.resumeProducing()
        await proto.when_idle()
        await wait_for(lambda: transport.value().endswith(b"a OK FETCH completed\r\n"))
        self.assertIn(b"BODY[] {%d}\r\n%s)" % (len(big), big), transport.value())
        self.assertIsNone(transport.producer)
