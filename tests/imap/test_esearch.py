"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) and the ``* ESEARCH`` answer."""

from __future__ import annotations

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
        for text in ("RETURN (SAVE) ALL", "RETURN ALL", "RETURN"):
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
        out = await self.send(proto, b"e SEARCH RETURN (SAVE) ALL\r\n")
        self.assertTrue(tagged(out, b"e").startswith(b"BAD"), out)
        out = await self.send(proto, b"f SEARCH FLAGGED\r\n")  # without RETURN: plain SEARCH
        self.assertEqual(out, b"* SEARCH 2 4 5\r\nf OK SEARCH completed\r\n")
