"""parse_fetch_items: macros, every item and section form, partials, what each item needs."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.imap.fetchspec import (
    BINARY,
    BINARY_SIZE,
    BODY_SECTION,
    FetchItem,
    Section,
    parse_fetch_items,
)
from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String
from tests.imap.tokens_helper import toks


def names(text: str) -> list[str]:
    return [item.name for item in parse_fetch_items(toks(text)).items]


def item(text: str) -> FetchItem:
    [only] = parse_fetch_items(toks(text)).items
    return only


class MacroAndSimpleItemTests(unittest.TestCase):
    def test_macros(self) -> None:
        self.assertEqual(names("ALL"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"])
        self.assertEqual(names("fast"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        self.assertEqual(
            names("FULL"), ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
        )

    def test_macro_inside_a_list_is_refused(self) -> None:
        with self.assertRaises(ImapSyntaxError):
            parse_fetch_items(toks("(ALL)"))

    def test_simple_items_in_request_order(self) -> None:
        text = (
            "(uid FLAGS internaldate RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE RFC822"
            " RFC822.HEADER RFC822.TEXT MODSEQ)"
        )
        self.assertEqual(
            names(text),
            [
                "UID",
                "FLAGS",
                "INTERNALDATE",
                "RFC822.SIZE",
                "ENVELOPE",
                "BODY",
                "BODYSTRUCTURE",
                "RFC822",
                "RFC822.HEADER",
                "RFC822.TEXT",
                "MODSEQ",
            ],
        )

    def test_duplicates_dropped(self) -> None:
        self.assertEqual(names("(FLAGS UID FLAGS)"), ["FLAGS", "UID"])

    def test_bad_input(self) -> None:
        for tokens in (
            [],
            [Atom(b"FLAGS"), Atom(b"UID")],
            [Atom(b"BOGUS")],
            [ParenList(())],
            [ParenList((String(b"FLAGS"),))],
            [String(b"FLAGS")],
            [ParenList((Atom(b"FLAGS"),) * 65)],
        ):
            with self.assertRaises(ImapSyntaxError, msg=repr(tokens)):
                parse_fetch_items(tokens)


class SectionTests(unittest.TestCase):
    def test_sections(self) -> None:
        cases = {
            "BODY[]": Section(),
            "BODY[HEADER]": Section((), "HEADER"),
            "body[text]": Section((), "TEXT"),
            "BODY[1]": Section((1,)),
            "BODY[1.2.3]": Section((1, 2, 3)),
            "BODY[2.MIME]": Section((2,), "MIME"),
            "BODY[2.header]": Section((2,), "HEADER"),
            "BODY[2.TEXT]": Section((2,), "TEXT"),
            "BODY[HEADER.FIELDS (From To)]": Section((), "HEADER.FIELDS", (b"From", b"To")),
            "BODY[header.fields.not (X-A)]": Section((), "HEADER.FIELDS.NOT", (b"X-A",)),
            'BODY[3.HEADER.FIELDS ("Subject")]': Section((3,), "HEADER.FIELDS", (b"Subject",)),
        }
        for text, section in cases.items():
            got = item(text)
            self.assertEqual((got.name, got.section, got.peek), (BODY_SECTION, section, False))

    def test_peek_and_partial(self) -> None:
        got = item("BODY.PEEK[HEADER.FIELDS (From To)]<0.100>")
        self.assertTrue(got.peek)
        self.assertEqual(got.partial, (0, 100))
        self.assertEqual(got.section.label(), b"HEADER.FIELDS (From To)")
        self.assertEqual(item("BODY[]<5.10>").partial, (5, 10))

    def test_bad_sections(self) -> None:
        for text in (
            "BODY[MIME]",
            "BODY[0]",
            "BODY[1.0]",
            "BODY[HEADER.FIELDS]",
            "BODY[HEADER.FIELDS ()]",
            "BODY[HEADER (From)]",
            "BODY[TEXT.1]",
            "BODY[1.BOGUS]",
            "BODY[]<5>",
            "BODY[]<1.0>",
            "BODY[]<a.b>",
            "BODY[HEADER.FIELDS (Fr:om)]",
            "BODY.PEEK",
            "BINARY.SIZE[1]<0.5>",
            "BINARY[HEADER]",
            "BODY[" + ".".join(["1"] * 65) + "]",
        ):
            with self.assertRaises(ImapSyntaxError, msg=text):
                parse_fetch_items(toks(text))

    def test_binary(self) -> None:
        self.assertEqual(item("BINARY[1.2]"), FetchItem(BINARY, Section((1, 2))))
        self.assertEqual(item("BINARY.PEEK[1]<0.9>").partial, (0, 9))
        self.assertEqual(item("BINARY.SIZE[]"), FetchItem(BINARY_SIZE, Section()))


class NeedsTests(unittest.TestCase):
    def spec(self, text: str):
        return parse_fetch_items(toks(text))

    def test_sets_seen(self) -> None:
        for text in ("BODY[]", "(FLAGS BODY[TEXT])", "RFC822", "RFC822.TEXT", "BINARY[1]"):
            self.assertTrue(self.spec(text).sets_seen, text)
        for text in ("BODY.PEEK[]", "RFC822.HEADER", "BODY", "FAST", "BINARY.PEEK[1]"):
            self.assertFalse(self.spec(text).sets_seen, text)

    def test_needs_file_and_parse(self) -> None:
        fast = self.spec("(FLAGS UID RFC822.SIZE INTERNALDATE)")
        self.assertFalse(fast.needs_file or fast.needs_parsed)
        header = self.spec("BODY.PEEK[HEADER.FIELDS (Subject)]")
        self.assertEqual((header.needs_file, header.needs_parsed), (True, False))
        part = self.spec("BODY.PEEK[2]")
        self.assertEqual((part.needs_file, part.needs_parsed), (True, True))
        structure = self.spec("(ENVELOPE BODYSTRUCTURE)")
        self.assertEqual((structure.needs_file, structure.needs_parsed), (False, True))

    def test_wants_modseq_and_uid(self) -> None:
        self.assertTrue(self.spec("(FLAGS MODSEQ)").wants_modseq)
        self.assertFalse(self.spec("FLAGS").wants_modseq)
        self.assertTrue(self.spec("(UID)").wants_uid)

    def test_header_only(self) -> None:
        """Items that read no more of the file than its top-level header."""
        for items in (
            "BODY.PEEK[HEADER]",
            "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Subject)] FLAGS)",
            "(BODY[HEADER.FIELDS.NOT (Received)]<0.100> RFC822.HEADER ENVELOPE)",
        ):
            self.assertTrue(self.spec(items).header_only, items)
        for items in (
            "(FLAGS UID)",
            "BODY.PEEK[]",
            "(BODY.PEEK[HEADER] BODY.PEEK[TEXT])",
            "BODY.PEEK[1.HEADER]",
            "BODY.PEEK[1.MIME]",
            "RFC822",
            "BINARY.PEEK[1]",
        ):
            self.assertFalse(self.spec(items).header_only, items)

    def test_flags_only(self) -> None:
        self.assertTrue(self.spec("(FLAGS UID MODSEQ)").flags_only)
        self.assertTrue(self.spec("FLAGS").flags_only)
        self.assertFalse(self.spec("(FLAGS INTERNALDATE)").flags_only)
        self.assertFalse(self.spec("FAST").flags_only)
