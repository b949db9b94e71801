"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) and the ``* ESEARCH`` answer;
SEARCHRES (RFC 5182): RETURN (SAVE) and ``$``."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap.esearch import esearch_line, split_return_options
from a3mail.imap.tokens import ImapSyntaxError
from tests.imap.support import ImapTestCase, tagged
from tests.imap.tokens_helper import toks


class ParsingTests(SynchronousTestCase):
    def test_return_options(self) -> None:
        options, rest = split_return_options(toks("RETURN (min Count) CHARSET UTF-8 ALL"))
        self.assertEqual(options, {b"MIN", b"COUNT"})
        self.assertEqual(rest, toks("CHARSET UTF-8 ALL"))
        self.assertEqual(split_return_options(toks("RETURN () ALL"))[0], {b"ALL"})
        self.assertEqual(split_return_options(toks("ALL")), (None, toks("ALL")))
        self.assertEqual(split_return_options(toks("RETURN (SAVE) ALL"))[0], {b"SAVE"})
        for text in ("RETURN (PARTIAL) ALL", "RETURN ALL", "RETURN"):
            with self.assertRaises(ImapSyntaxError, msg=text):
                split_return_options(toks(text))

    def test_lines(self) -> None:
        every = frozenset({b"MIN", b"MAX", b"COUNT", b"ALL"})
        self.assertEqual(
            esearch_line(b"a1", True, every, [2, 3, 4, 9], 77),
            b'* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 4 ALL 2:4,9 MODSEQ 77\r\n',
        )
        self.assertEqual(esearch_line(b"b", False, every, []), b'* ESEARCH (TAG "b") COUNT 0\r\n')
        self.assertEqual(
            esearch_line(b"c", False, frozenset({b"MAX"}), []), b'* ESEARCH (TAG "c")\r\n'
        )


class ESearchSessionTests(ImapTestCase):
    async def test_search_return(self) -> None:
        for _ in range(5):
            await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertIn(b" ESEARCH", out)
        await self.send(proto, b"s STORE 2,4:5 +FLAGS.SILENT (\\Flagged)\r\n")
        out = await self.send(proto, b"a SEARCH RETURN (MIN MAX COUNT) FLAGGED\r\n")
        self.assertEqual(
            out, b'* ESEARCH (TAG "a") MIN 2 MAX 5 COUNT 3\r\na OK SEARCH completed\r\n'
        )
        out = await self.send(proto, b"b UID SEARCH RETURN () CHARSET UTF-8 FLAGGED\r\n")
        self.assertEqual(out, b'* ESEARCH (TAG "b") UID ALL 2,4:5\r\nb OK SEARCH completed\r\n')
        out = await self.send(proto, b"c SEARCH RETURN (COUNT MIN) DELETED\r\n")
        self.assertEqual(out, b'* ESEARCH (TAG "c") COUNT 0\r\nc OK SEARCH completed\r\n')
        out = await self.send(proto, b"d SEARCH RETURN (ALL) MODSEQ 1\r\n")
        self.assertRegex(out, rb'^\* ESEARCH \(TAG "d"\) ALL 1:5 MODSEQ \d+\r\n')
        out = await self.send(proto, b"e SEARCH RETURN (FUZZY) ALL\r\n")
        self.assertTrue(tagged(out, b"e").startswith(b"BAD"), out)
        out = await self.send(proto, b"f SEARCH FLAGGED\r\n")  # without RETURN: plain SEARCH
        self.assertEqual(out, b"* SEARCH 2 4 5\r\nf OK SEARCH completed\r\n")


class SearchResTests(ImapTestCase):
    """SEARCHRES (RFC 5182): ``SEARCH RETURN (SAVE)`` and ``$``."""

    async def selected(self) -> Any:
        for _ in range(5):
            await self.deliver()
        proto = await self.session()
        await self.send(proto, b"s STORE 2,4:5 +FLAGS.SILENT (\\Flagged)\r\n")
        return proto

    async def test_save_alone_answers_nothing_and_dollar_names_the_messages(self) -> None:
        proto = await self.selected()
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertIn(b" SEARCHRES", out)
        out = await self.send(proto, b"a UID SEARCH RETURN (SAVE) FLAGGED\r\n")
        self.assertEqual(out, b"a OK SEARCH completed\r\n")
        out = await self.send(proto, b"b FETCH $ (UID)\r\n")
        self.assertEqual(
            out,
            b"* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\n* 5 FETCH (UID 5)\r\n"
            b"b OK FETCH completed\r\n",
        )
        out = await self.send(proto, b"c UID STORE $ +FLAGS.SILENT (\\Seen)\r\n")
        self.assertEqual(out, b"c OK STORE completed\r\n")
        out = await self.send(proto, b"d SEARCH SEEN\r\n")
        self.assertEqual(out, b"* SEARCH 2 4 5\r\nd OK SEARCH completed\r\n")
        # $ as a search key, refining the saved result (the old one is used, then replaced)
        out = await self.send(proto, b"e SEARCH RETURN (SAVE ALL) $ NOT UID 4\r\n")
        self.assertEqual(out, b'* ESEARCH (TAG "e") ALL 2,5\r\ne OK SEARCH completed\r\n')
        out = await self.send(proto, b"f UID SEARCH UID $\r\n")
        self.assertEqual(out, b"* SEARCH 2 5\r\nf OK SEARCH completed\r\n")

    async def test_min_max_save_only_those(self) -> None:
        proto = await self.selected()
        out = await self.send(proto, b"a SEARCH RETURN (SAVE MIN MAX) FLAGGED\r\n")
        self.assertEqual(out, b'* ESEARCH (TAG "a") MIN 2 MAX 5\r\na OK SEARCH completed\r\n')
        out = await self.send(proto, b"b UID FETCH $ (FLAGS)\r\n")
        self.assertEqual(out.count(b"FETCH (UID"), 2, out)
        self.assertIn(b"* 2 FETCH (UID 2 ", out)
        self.assertIn(b"* 5 FETCH (UID 5 ", out)

    async def test_dollar_is_empty_after_a_failed_save_and_in_a_new_mailbox(self) -> None:
        proto = await self.selected()
        out = await self.send(proto, b"b FETCH $ (UID)\r\n")  # nothing saved yet: empty
        self.assertEqual(out, b"b OK FETCH completed\r\n")
        await self.send(proto, b"a SEARCH RETURN (SAVE) FLAGGED\r\n")
        out = await self.send(proto, b"c SEARCH RETURN (SAVE) CHARSET KOI8-R FLAGGED\r\n")
        self.assertTrue(tagged(out, b"c").startswith(b"NO [BADCHARSET"), out)
        out = await self.send(proto, b"d FETCH $ (UID)\r\n")
        self.assertEqual(out, b"d OK FETCH completed\r\n")
        await self.send(proto, b"e SEARCH RETURN (SAVE) FLAGGED\r\n")
        out = await self.send(proto, b"f SEARCH RETURN (SAVE) FLAGGED BEFORE someday\r\n")
        self.assertTrue(tagged(out, b"f").startswith(b"BAD"), out)
        out = await self.send(proto, b"g FETCH $ (UID)\r\n")
        self.assertEqual(out, b"g OK FETCH completed\r\n")
        await self.send(proto, b"h SEARCH RETURN (SAVE) FLAGGED\r\n")
        await self.send(proto, b"i SELECT INBOX\r\n")
        out = await self.send(proto, b"j FETCH $ (UID)\r\n")
        self.assertEqual(out, b"j OK FETCH completed\r\n")

    async def test_expunged_messages_leave_the_saved_result(self) -> None:
        proto = await self.selected()
        await self.send(proto, b"a UID SEARCH RETURN (SAVE) FLAGGED\r\n")
        await self.send(proto, b"b UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\nc EXPUNGE\r\n")
        out = await self.send(proto, b"d UID FETCH $ (FLAGS)\r\n")
        self.assertEqual(out.count(b" FETCH ("), 2, out)
        self.assertNotIn(b"UID 4", out)
        out = await self.send(proto, b"e COPY $ Trash\r\n")
        self.assertIn(b"[COPYUID ", out)
