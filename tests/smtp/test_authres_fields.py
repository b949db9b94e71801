"""Header parsing for authentication (From, DKIM-Signature) and the DMARC building blocks."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.smtp.dmarc import (
    DMARCRecordError,
    aligned,
    is_dmarc_record,
    organizational_domain,
    parse_dmarc_record,
)
from a3mail.smtp.msgfields import (
    AuthorDomain,
    author_domain,
    header_fields,
    mailbox_addresses,
    tag_list,
)


class HeaderFieldTests(unittest.TestCase):
    def test_fields_are_unfolded_and_named_in_lower_case(self):
        message = (
            b"From: a@example.com\r\nSubject: one\r\n two\r\n\tthree\r\n"
            b"X-Empty:\r\n\r\nBody: no\r\n"
        )
        self.assertEqual(
            header_fields(message),
            [("from", b" a@example.com"), ("subject", b" one two\tthree"), ("x-empty", b"")],
        )

    def test_lf_line_ends_and_obsolete_space_before_colon(self):
        self.assertEqual(
            header_fields(b"From : a@example.com\nTo: b\n\nbody"),
            [("from", b" a@example.com"), ("to", b" b")],
        )

    def test_junk_lines_and_their_continuations_are_skipped(self):
        message = b" leading continuation\r\nnot a field\r\n continued junk\r\nTo: b\r\n\r\n"
        self.assertEqual(header_fields(message), [("to", b" b")])

    def test_no_header_section(self):
        self.assertEqual(header_fields(b"\r\nFrom: a@example.com\r\n"), [])
        self.assertEqual(header_fields(b""), [])

    def test_tag_list(self):
        tags = tag_list(b" v=1; d = example.com ;s=sel;\r\n\tb=abc\r\n def; junk; d=second")
        self.assertEqual(tags["d"], b"example.com")
        self.assertEqual(tags["s"], b"sel")
        self.assertEqual(tags["b"], b"abc\r\n def")
        self.assertNotIn("junk", tags)


class MailboxTests(unittest.TestCase):
    CASES = [
        ("a@example.com", ["a@example.com"]),
        ("Alice <a@example.com>", ["a@example.com"]),
        ('"bank@bank.example" <x@evil.example>', ["x@evil.example"]),
        ('"quote \\" <y@z.example>" <x@evil.example>', ["x@evil.example"]),
        ("a@example.com (Alice <c@comment.example>)", ["a@example.com"]),
        ("(nested (comment) a@b.example) x@y.example", ["x@y.example"]),
        ("a@x.example, Bob <b@y.example>", ["a@x.example", "b@y.example"]),
        ("undisclosed-recipients:;", []),
        ("Team: a@x.example, b@y.example;", ["a@x.example", "b@y.example"]),
        ('"a@b"@quoted.example', ['"a@b"@quoted.example']),
        ("<@route.example:a@b.example>", ["@route.example:a@b.example"]),
        ("", []),
    ]

    def test_cases(self):
        for value, expected in self.CASES:
            self.assertEqual(mailbox_addresses(value), expected, value)

    def test_author_domain(self):
        def fields(*values):
            return [("from", v) for v in values]

        self.assertEqual(author_domain(fields(b" A <a@Example.COM>")), AuthorDomain("example.com"))
        self.assertEqual(author_domain(fields(b" a@x.example, b@x.example")).domain, "x.example")
        self.assertEqual(author_domain([]), AuthorDomain(None, "none"))
        for bad in [
            fields(b"a@x.example", b"a@x.example"),
            fields(b" a@x.example, b@y.example"),
            fields(b" no address here"),
            fields(b" a@[192.0.2.1]"),
            fields(b" a@localhost"),
            fields(b" undisclosed:;"),
            fields(b" a@\xff.example"),
        ]:
            self.assertEqual(author_domain(bad).problem, "permerror", bad)
            self.assertIsNone(author_domain(bad).domain)


class DMARCPartsTests(unittest.TestCase):
    def test_organizational_domain(self):
        for domain, expected in [
            ("example.com", "example.com"),
            ("a.b.example.com", "example.com"),
            ("news.example.co.uk", "example.co.uk"),
            ("shop.example.com.au", "example.com.au"),
            ("foo.github.io", "foo.github.io"),
            ("co.uk", "co.uk"),
            ("Mail.Example.COM.", "example.com"),
            ("x.bücher.example", "xn--bcher-kva.example"),
        ]:
            self.assertEqual(organizational_domain(domain), expected, domain)

    def test_alignment(self):
        self.assertTrue(aligned("mail.example.com", "example.com", "r"))
        self.assertTrue(aligned("example.com", "news.example.com", "r"))
        self.assertFalse(aligned("mail.example.com", "example.com", "s"))
        self.assertTrue(aligned("EXAMPLE.com", "example.com.", "s"))
        self.assertFalse(aligned("example.net", "example.com", "r"))
        self.assertFalse(aligned("a.co.uk", "b.co.uk", "r"))
        self.assertFalse(aligned("", "example.com", "r"))

    def test_record_detection(self):
        self.assertTrue(is_dmarc_record(b"v=DMARC1; p=none"))
        self.assertTrue(is_dmarc_record(b"v = DMARC1"))
        self.assertFalse(is_dmarc_record(b"p=none; v=DMARC1"))
        self.assertFalse(is_dmarc_record(b"v=dmarc1; p=none"))
        self.assertFalse(is_dmarc_record(b"v=spf1 -all"))

    def test_record_parsing(self):
        record = parse_dmarc_record(b"v=DMARC1; p=Reject; sp=none; adkim=s; aspf=x; pct=50")
        self.assertEqual(
            (record.policy, record.subdomain_policy, record.dkim_alignment, record.spf_alignment),
            ("reject", "none", "s", "r"),
        )
        self.assertEqual(record.percent, 50)
        self.assertEqual(parse_dmarc_record(b"v=DMARC1; p=none; pct=900").percent, 100)
        self.assertEqual(parse_dmarc_record(b"v=DMARC1; p=none; pct=x").percent, 100)
        self.assertEqual(
            parse_dmarc_record(b"v=DMARC1; p=reject; sp=junk; rua=mailto:r@x.example").policy,
            "none",
        )
        for bad in [b"v=DMARC1", b"v=DMARC1; p=reject; sp=junk", b"v=DMARC2; p=reject"]:
            self.assertRaises(DMARCRecordError, parse_dmarc_record, bad)
