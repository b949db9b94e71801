"""SORT and UID SORT (RFC 5256): criteria, the base subject, ordering, and the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap.sortspec import base_subject, parse_sort_criteria, sort_records, subject_key
from a3mail.imap.tokens import ImapSyntaxError
from a3mail.store.search import SortRecord
from tests.imap.support import ImapTestCase, tagged
from tests.imap.tokens_helper import toks

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rec(uid: int, **values: object) -> SortRecord:
    fields: dict[str, object] = {
        "uid": uid,
        "internal_date": T0,
        "sent_date": None,
        "size": 100,
        "subject": "",
        "from_mailbox": "",
        "to_mailbox": "",
        "cc_mailbox": "",
    }
    fields.update(values)
    return SortRecord(**fields)  # type: ignore[arg-type]


class CriteriaTests(SynchronousTestCase):
    def test_parse(self) -> None:
        [token] = toks("(REVERSE date Subject ARRIVAL REVERSE SIZE cc to from)")
        self.assertEqual(
            parse_sort_criteria(token),
            (
                (b"DATE", True),
                (b"SUBJECT", False),
                (b"ARRIVAL", False),
                (b"SIZE", True),
                (b"CC", False),
                (b"TO", False),
                (b"FROM", False),
            ),
        )

    def test_bad_criteria(self) -> None:
        for text in ("()", "(REVERSE)", "(DATE REVERSE)", "(REVERSE REVERSE DATE)", "(NAME)"):
            [token] = toks(text)
            with self.assertRaises(ImapSyntaxError, msg=text):
                parse_sort_criteria(token)
        [token] = toks("DATE")
        with self.assertRaises(ImapSyntaxError):
            parse_sort_criteria(token)


class BaseSubjectTests(SynchronousTestCase):
    def test_rfc5256_extraction(self) -> None:
        cases = {
            "hello": "HELLO",
            "Re: hello": "HELLO",
            "RE: Re: re:hello": "HELLO",
            "Fwd: Fw: FW: hello": "HELLO",
            "Re [list]: hello": "HELLO",
            "[list] Re: [other] hello": "HELLO",
            "hello (fwd)": "HELLO",
            "hello (FWD) (fwd)  ": "HELLO",
            "[Fwd: Re: hello]": "HELLO",
            "[fwd: [fwd: hello (fwd)]]": "HELLO",
            "  many   \t spaces  ": "MANY SPACES",
            "[list]": "[LIST]",  # a blob that is all there is stays
            "Re: [list] ": "[LIST]",
            "Ré: über": "Ré: üBER",  # only ASCII letters fold; Ré is not a prefix
            "Reply: hello": "REPLY: HELLO",
            "": "",
        }
        for subject, expected in cases.items():
            self.assertEqual(base_subject(subject), expected, subject)

    def test_reply_or_forward_is_what_the_extraction_removed(self) -> None:
        for subject in ("Re: x", "[l] FWD: x", "x (fwd)", "[fwd: x]", "Re [l]: x"):
            self.assertEqual(subject_key(subject), ("X", True), subject)
        for subject in ("x", "[list] x", "Reply: x", "  x  ", "x fwd"):
            self.assertFalse(subject_key(subject)[1], subject)


class OrderTests(SynchronousTestCase):
    def test_criteria_in_turn_and_ties_in_mailbox_order(self) -> None:
        records = [
            rec(1, subject="Re: b", size=300),
            rec(2, subject="a", size=200),
            rec(3, subject="B", size=100),
            rec(4, subject="Fwd: a", size=200),
        ]
        self.assertEqual(sort_records(records, [(b"SUBJECT", False)]), [2, 4, 1, 3])
        self.assertEqual(sort_records(records, [(b"SUBJECT", True)]), [1, 3, 2, 4])
        self.assertEqual(
            sort_records(records, [(b"SIZE", False), (b"SUBJECT", True)]), [3, 2, 4, 1]
        )
        self.assertEqual(sort_records(records, [(b"ARRIVAL", False)]), [1, 2, 3, 4])

    def test_date_falls_back_to_arrival_and_addresses_fold_ascii(self) -> None:
        records = [
            rec(1, sent_date=T0 + timedelta(hours=2), from_mailbox="bob"),
            rec(2, internal_date=T0 + timedelta(hours=1), from_mailbox="Alice"),
            rec(3, sent_date=T0, from_mailbox=""),
        ]
        self.assertEqual(sort_records(records, [(b"DATE", False)]), [3, 2, 1])
        self.assertEqual(sort_records(records, [(b"FROM", False)]), [3, 2, 1])
        self.assertEqual(sort_records(records, [(b"FROM", True)]), [1, 2, 3])


def mail(subject: str, sender: str, date: str, body: str = "x") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\n\r\n{body}\r\n"
    ).encode()


class SortSessionTests(ImapTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await self.deliver(mail("Re: zebra", "Zed <zed@x.org>", "Mon, 15 Jan 2024 10:00:00 +0000"))
        await self.deliver(mail("apple", "bob@x.org", "Mon, 15 Jan 2024 09:00:00 -0300"))
        await self.deliver(mail("[list] Mango", "Amy <amy@x.org>", "garbage", "y" * 500))

    async def test_capability(self) -> None:
        proto = await self.session(select=None)
        self.assertIn(b" SORT ", await self.send(proto, b"c CAPABILITY\r\n"))

    async def test_sort_and_uid_sort(self) -> None:
        proto = await self.session()
        out = await self.send(proto, b"a SORT (SUBJECT) UTF-8 ALL\r\n")
        self.assertEqual(out, b"* SORT 2 3 1\r\na OK SORT completed\r\n")
        # 09:00 -0300 is 12:00 UTC, after 10:00 UTC; "garbage" sorts by its arrival (now).
        out = await self.send(proto, b"b UID SORT (REVERSE DATE) US-ASCII ALL\r\n")
        self.assertEqual(out, b"* SORT 3 2 1\r\nb OK SORT completed\r\n")
        out = await self.send(proto, b"c SORT (FROM) UTF-8 NOT FROM bob\r\n")
        self.assertEqual(out, b"* SORT 3 1\r\nc OK SORT completed\r\n")
        out = await self.send(proto, b"d SORT (REVERSE SIZE) UTF-8 SEEN\r\n")
        self.assertEqual(out, b"* SORT\r\nd OK SORT completed\r\n")

    async def test_sequence_numbers_follow_expunges(self) -> None:
        proto = await self.session()
        await self.send(proto, b"x STORE 1 +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n")
        out = await self.send(proto, b"a SORT (SUBJECT) UTF-8 ALL\r\n")
        self.assertEqual(out, b"* SORT 1 2\r\na OK SORT completed\r\n")
        out = await self.send(proto, b"b UID SORT (SUBJECT) UTF-8 ALL\r\n")
        self.assertEqual(out, b"* SORT 2 3\r\nb OK SORT completed\r\n")

    async def test_bad_input(self) -> None:
        proto = await self.session()
        out = await self.send(proto, b"a SORT (SUBJECT) ISO-8859-1 ALL\r\n")
        self.assertEqual(tagged(out, b"a"), b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        for command in (
            b"b SORT SUBJECT UTF-8 ALL\r\n",
            b"c SORT (SUBJECT) ALL\r\n",
            b"d SORT (NAME) UTF-8 ALL\r\n",
            b"e SORT (SUBJECT) UTF-8 FOO\r\n",
        ):
            out = await self.send(proto, command)
            self.assertIn(b" BAD ", out, command)
        out = await self.send(proto, b"f NOOP\r\n")
        self.assertEqual(tagged(out, b"f"), b"OK NOOP completed")
