"""QRESYNC (RFC 7162 3.2): ENABLE, SELECT/EXAMINE with a QRESYNC parameter, UID FETCH with
VANISHED, VANISHED instead of EXPUNGE, and the CLOSED response code."""

from __future__ import annotations

import re
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap.qresync import (
    QresyncParams,
    SelectParams,
    parse_fetch_modifiers,
    parse_select_params,
    vanished_line,
)
from a3mail.imap.tokens import ImapSyntaxError
from a3mail.imap.wire import in_ranges
from tests.imap.support import ImapTestCase, tagged
from tests.imap.tokens_helper import toks


class ParsingTests(SynchronousTestCase):
    def test_select_parameters(self) -> None:
        [params] = toks("(QRESYNC (67890007 20050715194045000 41,43:211 (1:3 41,43:44)))")
        self.assertEqual(
            parse_select_params(params, True),
            SelectParams(False, QresyncParams(67890007, 20050715194045000, [(41, 41), (43, 211)])),
        )
        [params] = toks("(CONDSTORE QRESYNC (1 2))")
        self.assertEqual(parse_select_params(params, True), SelectParams(True, QresyncParams(1, 2)))
        [params] = toks("(CONDSTORE)")
        self.assertEqual(parse_select_params(params, False), SelectParams(True, None))

    def test_bad_select_parameters(self) -> None:
        for text in (
            "(QRESYNC)",
            "(QRESYNC 1)",
            "(QRESYNC (1))",
            "(QRESYNC (0 5))",
            "(QRESYNC (1 x))",
            "(QRESYNC (1 2 1:5 (1:3)))",
            "(QRESYNC (1 2 1:5 (1:3 1:3) 7))",
            "(QRESYNC (1 2) QRESYNC (1 2))",
            "(FOO)",
            "()",
        ):
            [params] = toks(text)
            with self.assertRaises(ImapSyntaxError, msg=text):
                parse_select_params(params, True)
        [params] = toks("(QRESYNC (1 2))")
        with self.assertRaises(ImapSyntaxError):
            parse_select_params(params, False)  # not enabled: BAD (RFC 7162 3.2.5)

    def test_fetch_modifiers(self) -> None:
        [mods] = toks("(CHANGEDSINCE 12345 VANISHED)")
        self.assertEqual(parse_fetch_modifiers(mods), (12345, True))
        [mods] = toks("(VANISHED CHANGEDSINCE 7)")
        self.assertEqual(parse_fetch_modifiers(mods), (7, True))
        [mods] = toks("(CHANGEDSINCE 7)")
        self.assertEqual(parse_fetch_modifiers(mods), (7, False))
        for text in ("(VANISHED)", "(CHANGEDSINCE)", "(FOO 1)", "(CHANGEDSINCE 1 CHANGEDSINCE 2)"):
            [mods] = toks(text)
            with self.assertRaises(ImapSyntaxError, msg=text):
                parse_fetch_modifiers(mods)

    def test_ranges_and_lines(self) -> None:
        ranges: Any = [(1, 3), (None, None), (10, 8)]
        self.assertEqual(
            [u for u in range(1, 13) if in_ranges(u, ranges, 12)], [1, 2, 3, 8, 9, 10, 12]
        )
        self.assertEqual(
            vanished_line([5, 1, 2, 3], earlier=True), b"* VANISHED (EARLIER) 1:3,5\r\n"
        )
        self.assertEqual(vanished_line([4], earlier=False), b"* VANISHED 4\r\n")
        self.assertEqual(vanished_line([], earlier=False), b"")


def _status(out: bytes) -> tuple[int, int]:
    uidvalidity = re.search(rb"UIDVALIDITY (\d+)", out)
    modseq = re.search(rb"HIGHESTMODSEQ (\d+)", out)
    assert uidvalidity is not None and modseq is not None, out
    return int(uidvalidity.group(1)), int(modseq.group(1))


class QresyncSessionTests(ImapTestCase):
    async def changed_mailbox(self) -> tuple[int, int]:
        """Five messages seen by a client (its UIDVALIDITY and HIGHESTMODSEQ returned), then
        UID 2 expunged and UID 4 flagged \\Seen behind its back."""
        for _ in range(5):
            await self.deliver()
        first = await self.session(select=None)
        state = _status(await self.send(first, b"s SELECT INBOX\r\n"))
        other = await self.session()
        await self.send(other, b"a UID STORE 2 +FLAGS.SILENT (\\Deleted)\r\nb EXPUNGE\r\n")
        await self.send(other, b"c UID STORE 4 +FLAGS (\\Seen)\r\n")
        return state

    async def qresync_session(self) -> Any:
        proto = await self.session(select=None)
        out = await self.send(proto, b"e ENABLE QRESYNC\r\n")
        self.assertEqual(out, b"* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n")
        return proto

    async def test_capability_and_enable(self) -> None:
        proto = await self.session(select=None)
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertIn(b" QRESYNC", out)
        out = await self.send(proto, b"e ENABLE QRESYNC CONDSTORE\r\n")
        self.assertEqual(out, b"* ENABLED QRESYNC CONDSTORE\r\ne OK ENABLE completed\r\n")
        self.assertTrue(proto.condstore and proto.qresync)

    async def test_select_reports_what_changed_since_the_known_modseq(self) -> None:
        uidvalidity, modseq = await self.changed_mailbox()
        proto = await self.qresync_session()
        out = await self.send(
            proto, b"s SELECT INBOX (QRESYNC (%d %d))\r\n" % (uidvalidity, modseq)
        )
        self.assertIn(b"* 4 EXISTS\r\n", out)
        self.assertIn(b"* VANISHED (EARLIER) 2\r\n", out)
        fetches = re.findall(rb"\* \d+ FETCH [^\r]*", out)
        self.assertEqual(len(fetches), 1, out)
        self.assertRegex(fetches[0], rb"^\* 3 FETCH \(FLAGS \(\\Seen\) UID 4 MODSEQ \(\d+\)\)$")
        self.assertLess(out.index(b"HIGHESTMODSEQ"), out.index(b"VANISHED"))
        self.assertLess(out.index(b"VANISHED"), out.index(b"FETCH"))
        self.assertEqual(tagged(out, b"s"), b"OK [READ-WRITE] SELECT completed")

    async def test_known_uids_limit_the_answer(self) -> None:
        uidvalidity, modseq = await self.changed_mailbox()
        proto = await self.qresync_session()
        out = await self.send(
            proto, b"s EXAMINE INBOX (QRESYNC (%d %d 3:* (1:2 1:2)))\r\n" % (uidvalidity, modseq)
        )
        self.assertNotIn(b"VANISHED", out)
        self.assertIn(b"UID 4 MODSEQ", out)
        out = await self.send(
            proto, b"t EXAMINE INBOX (QRESYNC (%d %d 1:3))\r\n" % (uidvalidity, modseq)
        )
        self.assertIn(b"* VANISHED (EARLIER) 2\r\n", out)
        self.assertNotIn(b"FETCH", out)

    async def test_another_uidvalidity_gets_no_resync_data(self) -> None:
        uidvalidity, modseq = await self.changed_mailbox()
        proto = await self.qresync_session()
        out = await self.send(
            proto, b"s SELECT INBOX (QRESYNC (%d %d))\r\n" % (uidvalidity + 1, modseq)
        )
        self.assertNotIn(b"VANISHED", out)
        self.assertNotIn(b"FETCH", out)
        self.assertEqual(tagged(out, b"s"), b"OK [READ-WRITE] SELECT completed")

    async def test_qresync_parameter_needs_enable(self) -> None:
        proto = await self.session(select=None)
        out = await self.send(proto, b"s SELECT INBOX (QRESYNC (1 1))\r\n")
        self.assertTrue(tagged(out, b"s").startswith(b"BAD"), out)
        self.assertIsNone(proto.selected)

    async def test_uid_fetch_vanished(self) -> None:
        _, modseq = await self.changed_mailbox()
        proto = await self.qresync_session()
        await self.send(proto, b"s SELECT INBOX\r\n")
        out = await self.send(
            proto, b"f UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % modseq
        )
        self.assertTrue(out.startswith(b"* VANISHED (EARLIER) 2\r\n"), out)
        self.assertRegex(out, rb"\* 3 FETCH \(UID 4 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)\r\n")
        self.assertEqual(out.count(b"FETCH ("), 1)
        out = await self.send(
            proto, b"g UID FETCH 3:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n" % modseq
        )
        self.assertNotIn(b"VANISHED", out)
        for bad in (
            b"h FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",  # not UID FETCH
            b"i UID FETCH 1:* (FLAGS) (VANISHED)\r\n",  # no CHANGEDSINCE
        ):
            out = await self.send(proto, bad)
            self.assertIn(b" BAD ", out)

    async def test_uid_fetch_vanished_needs_enable(self) -> None:
        await self.deliver()
        proto = await self.session()
        out = await self.send(proto, b"f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n")
        self.assertTrue(tagged(out, b"f").startswith(b"BAD"), out)

    async def test_expunges_are_reported_as_vanished(self) -> None:
        for _ in range(4):
            await self.deliver()
        proto = await self.qresync_session()
        await self.send(proto, b"s SELECT INBOX\r\n")
        out = await self.send(proto, b"a STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\nb EXPUNGE\r\n")
        self.assertIn(b"* VANISHED 1:2\r\nb OK EXPUNGE completed\r\n", out)
        self.assertNotIn(b" EXPUNGE\r\n", out.replace(b"b OK EXPUNGE", b""))
        out = await self.send(proto, b"c MOVE 1 Trash\r\n")
        self.assertIn(b"* VANISHED 3\r\n", out)
        other = await self.session()
        await self.send(other, b"d UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\ne UID EXPUNGE 4\r\n")
        for _ in range(100):  # the other session's expunge arrives through the bus
            out = await self.send(proto, b"n NOOP\r\n")
            if b"VANISHED" in out:
                break
        self.assertEqual(out, b"* VANISHED 4\r\nn OK NOOP completed\r\n")

    async def test_selecting_another_mailbox_says_closed(self) -> None:
        proto = await self.session()
        out = await self.send(proto, b"s EXAMINE Trash\r\n")
        self.assertTrue(out.startswith(b"* OK [CLOSED] Previous mailbox closed\r\n* FLAGS"), out)
        proto = await self.session(select=None)
        out = await self.send(proto, b"s SELECT INBOX\r\n")
        self.assertNotIn(b"CLOSED", out)
