"""parse_search: every RFC 3501 key, CHARSET, MODSEQ, grouping, limits; sequence resolution."""

from __future__ import annotations

import datetime

from twisted.trial import unittest

from a3mail.imap.searchspec import (
    MAX_INTERVAL,
    AgeKey,
    All,
    And,
    BadCharset,
    DateKey,
    FlagKey,
    KeywordKey,
    ModSeqKey,
    Not,
    Nothing,
    Or,
    SequenceKey,
    SizeKey,
    TextKey,
    UidKey,
    parse_search,
    parse_sequence_set,
)
from a3mail.imap.tokens import Atom, ImapSyntaxError, String
from tests.imap.tokens_helper import toks


def keys(text: str) -> tuple:
    root = parse_search(toks(text)).root
    assert isinstance(root, And)
    return root.keys


def one(text: str):
    [key] = keys(text)
    return key


class ParseSearchTests(unittest.TestCase):
    def test_flag_keys(self) -> None:
        expected = {
            "SEEN": FlagKey(1, True),
            "UNSEEN": FlagKey(1, False),
            "ANSWERED": FlagKey(2, True),
            "UNANSWERED": FlagKey(2, False),
            "FLAGGED": FlagKey(4, True),
            "UNFLAGGED": FlagKey(4, False),
            "DELETED": FlagKey(8, True),
            "UNDELETED": FlagKey(8, False),
            "DRAFT": FlagKey(16, True),
            "UNDRAFT": FlagKey(16, False),
        }
        for word, key in expected.items():
            self.assertEqual(one(word), key, word)
            self.assertEqual(one(word.lower()), key, word)

    def test_all_recent_new_old(self) -> None:
        self.assertEqual(one("ALL"), All())
        self.assertEqual(one("OLD"), All())
        self.assertEqual(one("RECENT"), Nothing())
        self.assertEqual(one("NEW"), Nothing())

    def test_keyword(self) -> None:
        self.assertEqual(one("KEYWORD $Work"), KeywordKey("$Work", True))
        self.assertEqual(one("UNKEYWORD $Work"), KeywordKey("$Work", False))
        self.assertEqual(one("KEYWORD \\Flagged"), FlagKey(4, True))

    def test_text_keys_take_atoms_strings_and_literals(self) -> None:
        for word in ("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"):
            self.assertEqual(one(f"{word} joe"), TextKey(word.lower(), "joe"))
            self.assertEqual(one(f'{word} "a b"'), TextKey(word.lower(), "a b"))
        literal = parse_search([Atom(b"SUBJECT"), String("Grüße".encode(), literal=True)])
        self.assertEqual(literal.root, And((TextKey("subject", "Grüße"),)))

    def test_header(self) -> None:
        self.assertEqual(one("HEADER X-Mailer mutt"), TextKey("header", "mutt", "x-mailer"))
        self.assertEqual(one('HEADER List-Id ""'), TextKey("header", "", "list-id"))
        with self.assertRaises(ImapSyntaxError):
            parse_search(toks('HEADER "" x'))

    def test_dates(self) -> None:
        day = datetime.date(2024, 2, 1)
        self.assertEqual(one("BEFORE 1-Feb-2024"), DateKey("internal", "before", day))
        self.assertEqual(one("ON 01-feb-2024"), DateKey("internal", "on", day))
        self.assertEqual(one('SINCE "1-Feb-2024"'), DateKey("internal", "since", day))
        self.assertEqual(one("SENTBEFORE 1-Feb-2024"), DateKey("sent", "before", day))
        self.assertEqual(one("SENTON 1-Feb-2024"), DateKey("sent", "on", day))
        self.assertEqual(one("SENTSINCE 1-Feb-2024"), DateKey("sent", "since", day))
        for bad in ("BEFORE 31-Feb-2024", "ON 1-Foo-2024", "SINCE 2024-02-01", "SINCE"):
            with self.assertRaises(ImapSyntaxError, msg=bad):
                parse_search(toks(bad))

    def test_within(self) -> None:
        self.assertEqual(one("YOUNGER 3600"), AgeKey("younger", 3600))
        self.assertEqual(one("OLDER 60"), AgeKey("older", 60))
        self.assertEqual(one("OLDER 99999999999999999999"), AgeKey("older", MAX_INTERVAL))
        for bad in ("YOUNGER x", "OLDER -5", "OLDER"):
            with self.assertRaises(ImapSyntaxError, msg=bad):
                parse_search(toks(bad))

    def test_sizes(self) -> None:
        self.assertEqual(one("LARGER 100"), SizeKey("larger", 100))
        self.assertEqual(one("SMALLER 5"), SizeKey("smaller", 5))
        with self.assertRaises(ImapSyntaxError):
            parse_search(toks("LARGER x"))

    def test_not_or_groups_and_implicit_and(self) -> None:
        self.assertEqual(one("NOT SEEN"), Not(FlagKey(1, True)))
        self.assertEqual(
            one("OR SEEN (FLAGGED DRAFT)"),
            Or(FlagKey(1, True), And((FlagKey(4, True), FlagKey(16, True)))),
        )
        self.assertEqual(keys("SEEN FROM x"), (FlagKey(1, True), TextKey("from", "x")))

    def test_sequence_and_uid_sets(self) -> None:
        self.assertEqual(one("1:3,5,7:*"), SequenceKey(((1, 3), (5, 5), (7, None))))
        self.assertEqual(one("*"), SequenceKey(((None, None),)))
        self.assertEqual(one("UID 4:2"), UidKey(((4, 2),)))
        for bad in ("0", "1:0", "1,,2", "UID x", "UID"):
            with self.assertRaises(ImapSyntaxError, msg=bad):
                parse_search(toks(bad))

    def test_modseq(self) -> None:
        self.assertEqual(one("MODSEQ 720162338"), ModSeqKey(720162338))
        self.assertEqual(one('MODSEQ "/flags/\\\\draft" all 620162338'), ModSeqKey(620162338))
        self.assertTrue(parse_search(toks("MODSEQ 5")).uses_modseq)
        self.assertFalse(parse_search(toks("SEEN")).uses_modseq)
        with self.assertRaises(ImapSyntaxError):
            parse_search(toks('MODSEQ "/flags/x" bogus 5'))

    def test_charset(self) -> None:
        q = parse_search(toks("CHARSET utf-8 SUBJECT x"))
        self.assertEqual(q.charset, "UTF-8")
        self.assertEqual(parse_search(toks('CHARSET "US-ASCII" ALL')).charset, "US-ASCII")
        with self.assertRaises(BadCharset):
            parse_search(toks("CHARSET KOI8-R SUBJECT x"))
        self.assertTrue(issubclass(BadCharset, ImapSyntaxError))

    def test_syntax_errors(self) -> None:
        for bad in ("", "BOGUS", "SUBJECT", "NOT", "OR SEEN", "()", "CHARSET"):
            with self.assertRaises(ImapSyntaxError, msg=bad):
                parse_search(toks(bad))

    def test_limits(self) -> None:
        with self.assertRaises(ImapSyntaxError):
            parse_search(toks("NOT " * 100 + "SEEN"))
        with self.assertRaises(ImapSyntaxError):
            parse_search(toks("SEEN " * 1001))
        with self.assertRaises(ImapSyntaxError):
            parse_sequence_set(b",".join([b"1"] * 100_001))


class ResolveTests(unittest.TestCase):
    def test_sequence_numbers_become_uid_ranges(self) -> None:
        q = parse_search(toks("OR 2:3 NOT *")).resolve([10, 20, 30, 40])
        self.assertEqual(q.root, And((Or(UidKey(((20, 30),)), Not(UidKey(((40, 40),)))),)))
        self.assertTrue(q.resolved)
        self.assertFalse(parse_search(toks("1")).resolved)

    def test_out_of_range_and_reversed(self) -> None:
        q = parse_search(toks("3:1,9,4:*")).resolve([10, 20, 30, 40])
        self.assertEqual(q.root, And((UidKey(((10, 30), (40, 40))),)))

    def test_empty_mailbox(self) -> None:
        q = parse_search(toks("1:*")).resolve([])
        self.assertEqual(q.root, And((UidKey(()),)))

    def test_uid_star_is_the_last_uid(self) -> None:
        q = parse_search(toks("UID 35:*")).resolve([10, 20, 30])
        self.assertEqual(q.root, And((UidKey(((35, 30),)),)))
