"""render_fetch: every item, byte-exact sections, partials, FileRanges, hostile parses."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from twisted.trial import unittest

from a3mail.imap.fetchrender import SMALL_READ, FileRange, internal_date, render_fetch
from a3mail.imap.fetchspec import parse_fetch_items
from a3mail.mime import parse_message
from a3mail.store.search import FetchRecord, FlagsRecord
from tests.imap.tokens_helper import toks


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


NESTED = crlf(
    "From: Alice <alice@a.example>\n"
    'To: Bob <bob@b.example>, "Smith, J" <j@s.example>\n'
    "Subject: Nested\n"
    "  report\n"
    "Date: Mon, 15 Jan 2024 10:00:00 +0000\n"
    "Message-ID: <n1@a.example>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="Outer-XX"\n'
    "\n"
    "preamble\n"
    "--Outer-XX\n"
    'Content-Type: text/plain; charset="UTF-8"; Format=Flowed\n'
    "\n"
    "Hello there\n"
    "--Outer-XX\n"
    "Content-Type: message/rfc822\n"
    "Content-Description: forwarded\n"
    "\n"
    "From: carol@c.example\n"
    "Subject: inner\n"
    'Content-Type: multipart/alternative; boundary="In-YY"\n'
    "\n"
    "--In-YY\n"
    "Content-Type: text/plain\n"
    "\n"
    "plain\n"
    "--In-YY\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<b>html</b>\n"
    "--In-YY--\n"
    "--Outer-XX\n"
    'Content-Type: application/pdf; name="Report.PDF"\n'
    'Content-Disposition: attachment; filename="Report.PDF"\n'
    "Content-Transfer-Encoding: base64\n"
    "Content-Language: en, fr\n"
    "\n"
    "JVBERi0xLjQK\n"
    "--Outer-XX--\n"
)
HEADER_END = NESTED.index(b"\r\n\r\n") + 4

NESTED_STRUCTURE = (
    b'(("TEXT" "PLAIN" ("CHARSET" "UTF-8" "FORMAT" "Flowed") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)'
    b'("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" 213 (NIL "inner"'
    b' ((NIL NIL "carol" "c.example")) ((NIL NIL "carol" "c.example"))'
    b' ((NIL NIL "carol" "c.example")) NIL NIL NIL NIL NIL)'
    b' (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)'
    b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)'
    b' "ALTERNATIVE" ("BOUNDARY" "In-YY") NIL NIL NIL) 13 NIL NIL NIL NIL)'
    b'("APPLICATION" "PDF" ("NAME" "Report.PDF") NIL NIL "BASE64" 12 NIL'
    b' ("ATTACHMENT" ("FILENAME" "Report.PDF")) ("en" "fr") NIL)'
    b' "MIXED" ("BOUNDARY" "Outer-XX") NIL NIL NIL)'
)


def record(raw: bytes, *, parsed: Any = "parse", flags: int = 0, **extra: Any) -> FetchRecord:
    """A FetchRecord as fetch_info returns it (the parse round-tripped through JSON)."""
    if parsed == "parse":
        parsed = json.loads(json.dumps(parse_message(raw).to_json()))
    header_size = parsed.get("header_size", 0) if isinstance(parsed, dict) else 0
    values: dict[str, Any] = {
        "uid": 7,
        "modseq": 42,
        "flags": flags,
        "keywords": (),
        "internal_date": datetime(2024, 1, 5, 9, 8, 7, tzinfo=timezone(timedelta(hours=2))),
        "size": len(raw),
        "blob_path": "x",
        "header_size": header_size,
        "parsed": parsed,
    }
    values.update(extra)
    return FetchRecord(**values)


def joined(pieces: list[bytes | FileRange], raw: bytes) -> bytes:
    """The response as sent: FileRanges replaced by those bytes of the file."""
    return b"".join(
        raw[p.offset : p.offset + p.length] if isinstance(p, FileRange) else p for p in pieces
    )


def check_well_formed(response: bytes) -> None:
    """Literal lengths match, parentheses balance, one response line."""
    assert response.startswith(b"* ") and response.endswith(b")\r\n"), response[:200]
    depth, pos, quoted = 0, 0, False
    while pos < len(response):
        char = response[pos : pos + 1]
        if quoted:
            if char == b"\\":
                pos += 1
            elif char == b'"':
                quoted = False
        elif char == b'"':
            quoted = True
        elif char == b"{":
            m = re.compile(rb"\{(\d+)\}\r\n").match(response, pos)
            assert m is not None, response[pos : pos + 20]
            pos = m.end() + int(m.group(1)) - 1
        elif char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            assert depth >= 0
        elif char in (b"\r", b"\n"):
            assert response[pos:] == b"\r\n", response[pos : pos + 50]
            break
        pos += 1
    assert depth == 0 and not quoted


def fetch(raw: bytes, items: str, msg: FetchRecord | None = None, **kwargs: Any) -> bytes:
    spec = parse_fetch_items(toks(items))
    kwargs.setdefault("with_uid", False)
    kwargs.setdefault("with_modseq", False)
    pieces = render_fetch(spec, msg or record(raw), 3, io.BytesIO(raw), **kwargs)
    response = joined(pieces, raw)
    check_well_formed(response)
    return response


def body_of(response: bytes, label: bytes) -> bytes:
    """The literal (or "") that follows *label* in a response."""
    start = response.index(label + b" ") + len(label) + 1
    if response[start : start + 2] == b'""':
        return b""
    m = re.compile(rb"~?\{(\d+)\}\r\n").match(response, start)
    assert m is not None, response[start : start + 40]
    return response[m.end() : m.end() + int(m.group(1))]


class SimpleItemTests(unittest.TestCase):
    def test_fast_items_and_order(self) -> None:
        msg = record(NESTED, flags=1 | 4, keywords=("$Work",))
        self.assertEqual(
            fetch(NESTED, "(RFC822.SIZE FLAGS INTERNALDATE)", msg),
            b"* 3 FETCH (RFC822.SIZE %d FLAGS (\\Seen \\Flagged $Work)"
            b' INTERNALDATE "05-Jan-2024 09:08:07 +0200")\r\n' % len(NESTED),
        )

    def test_uid_first_and_modseq_last_when_asked_by_the_session(self) -> None:
        self.assertEqual(
            fetch(NESTED, "FLAGS", with_uid=True, with_modseq=True),
            b"* 3 FETCH (UID 7 FLAGS () MODSEQ (42))\r\n",
        )
        self.assertEqual(
            fetch(NESTED, "(MODSEQ UID)", with_uid=True, with_modseq=True),
            b"* 3 FETCH (MODSEQ (42) UID 7)\r\n",
        )

    def test_include_flags_after_setting_seen(self) -> None:
        msg = record(NESTED, flags=1)
        response = fetch(NESTED, "BODY[1]", msg, include_flags=True)
        self.assertTrue(response.endswith(b" FLAGS (\\Seen))\r\n"), response)

    def test_flags_record_is_enough_for_flags_only(self) -> None:
        msg = FlagsRecord(9, 77, 2, ("$Done",))
        spec = parse_fetch_items(toks("(FLAGS)"))
        self.assertTrue(spec.flags_only)
        pieces = render_fetch(spec, msg, 4, None, with_uid=True, with_modseq=True)
        self.assertEqual(pieces, [b"* 4 FETCH (UID 9 FLAGS (\\Answered $Done) MODSEQ (77))\r\n"])

    def test_internal_date_format(self) -> None:
        west = datetime(2026, 11, 21, 23, 5, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
        self.assertEqual(internal_date(west), b"21-Nov-2026 23:05:00 -0530")

    def test_envelope(self) -> None:
        self.assertEqual(
            fetch(NESTED, "ENVELOPE"),
            b'* 3 FETCH (ENVELOPE ("Mon, 15 Jan 2024 10:00:00 +0000" "Nested  report"'
            b' (("Alice" NIL "alice" "a.example")) (("Alice" NIL "alice" "a.example"))'
            b' (("Alice" NIL "alice" "a.example"))'
            b' (("Bob" NIL "bob" "b.example")("Smith, J" NIL "j" "s.example"))'
            b' NIL NIL NIL "<n1@a.example>"))\r\n',
        )

    def test_envelope_8bit_and_quotes_become_literals(self) -> None:
        raw = crlf('Subject: Grüße "quoted"\nFrom: "Zoë \\"Z\\"" <z@z.example>\n\nx\n')
        response = fetch(raw, "ENVELOPE")
        self.assertIn(
            b'{%d}\r\nGr\xc3\xbc\xc3\x9fe "quoted"' % len('Grüße "quoted"'.encode()), response
        )
        self.assertIn('Zoë "Z"'.encode(), response)

    def test_bodystructure_nested_with_parameter_case_kept(self) -> None:
        self.assertEqual(
            fetch(NESTED, "BODYSTRUCTURE"),
            b"* 3 FETCH (BODYSTRUCTURE " + NESTED_STRUCTURE + b")\r\n",
        )

    def test_body_has_no_extension_data(self) -> None:
        response = fetch(NESTED, "BODY")
        self.assertIn(
            b'("TEXT" "PLAIN" ("CHARSET" "UTF-8" "FORMAT" "Flowed") NIL NIL "7BIT" 11 1)', response
        )
        self.assertTrue(response.endswith(b' "MIXED"))\r\n'), response)

    def test_no_body_read_for_envelope_and_structure(self) -> None:
        spec = parse_fetch_items(toks("(ENVELOPE BODYSTRUCTURE FLAGS)"))
        pieces = render_fetch(spec, record(NESTED), 1, None, with_uid=True, with_modseq=False)
        check_well_formed(b"".join(pieces))  # type: ignore[arg-type]


class SectionTests(unittest.TestCase):
    def section(self, items: str, label: bytes, raw: bytes = NESTED) -> bytes:
        return body_of(fetch(raw, items), label)

    def test_whole_header_text(self) -> None:
        self.assertEqual(self.section("BODY[]", b"BODY[]"), NESTED)
        self.assertEqual(self.section("RFC822", b"RFC822"), NESTED)
        self.assertEqual(self.section("BODY.PEEK[HEADER]", b"BODY[HEADER]"), NESTED[:HEADER_END])
        self.assertEqual(self.section("RFC822.HEADER", b"RFC822.HEADER"), NESTED[:HEADER_END])
        self.assertEqual(self.section("BODY[TEXT]", b"BODY[TEXT]"), NESTED[HEADER_END:])
        self.assertEqual(self.section("RFC822.TEXT", b"RFC822.TEXT"), NESTED[HEADER_END:])

    def test_parts_byte_exact(self) -> None:
        self.assertEqual(self.section("BODY[1]", b"BODY[1]"), b"Hello there")
        self.assertEqual(
            self.section("BODY[1.MIME]", b"BODY[1.MIME]"),
            b'Content-Type: text/plain; charset="UTF-8"; Format=Flowed\r\n\r\n',
        )
        inner = NESTED[
            NESTED.index(b"From: carol") : NESTED.index(b"\r\n--Outer-XX\r\nContent-Type: app")
        ]
        self.assertEqual(self.section("BODY[2]", b"BODY[2]"), inner)
        self.assertEqual(
            self.section("BODY[2.HEADER]", b"BODY[2.HEADER]"), inner[: inner.index(b"\r\n\r\n") + 4]
        )
        self.assertEqual(
            self.section("BODY[2.TEXT]", b"BODY[2.TEXT]"), inner[inner.index(b"\r\n\r\n") + 4 :]
        )
        self.assertEqual(self.section("BODY[2.1]", b"BODY[2.1]"), b"plain")
        self.assertEqual(self.section("BODY[2.2]", b"BODY[2.2]"), b"<b>html</b>")
        self.assertEqual(self.section("BODY[3]", b"BODY[3]"), b"JVBERi0xLjQK")

    def test_missing_or_unsuitable_part_is_empty(self) -> None:
        self.assertEqual(fetch(NESTED, "BODY[9]"), b'* 3 FETCH (BODY[9] "")\r\n')
        self.assertEqual(fetch(NESTED, "BODY[1.HEADER]"), b'* 3 FETCH (BODY[1.HEADER] "")\r\n')

    def test_single_part_message_part_one_is_its_body(self) -> None:
        raw = crlf("Subject: s\n\nonly body\n")
        self.assertEqual(self.section("BODY[1]", b"BODY[1]", raw), b"only body\r\n")

    def test_header_fields_byte_exact_with_folding(self) -> None:
        got = self.section(
            "BODY.PEEK[HEADER.FIELDS (subject TO)]", b"BODY[HEADER.FIELDS (subject TO)]"
        )
        self.assertEqual(
            got,
            b'To: Bob <bob@b.example>, "Smith, J" <j@s.example>\r\n'
            b"Subject: Nested\r\n  report\r\n\r\n",
        )

    def test_header_fields_not(self) -> None:
        got = self.section(
            "BODY[HEADER.FIELDS.NOT (From To Subject Date Message-ID)]",
            b"BODY[HEADER.FIELDS.NOT (From To Subject Date Message-ID)]",
        )
        self.assertEqual(
            got, b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="Outer-XX"\r\n\r\n'
        )

    def test_header_fields_of_an_encapsulated_message(self) -> None:
        got = self.section("BODY[2.HEADER.FIELDS (Subject)]", b"BODY[2.HEADER.FIELDS (Subject)]")
        self.assertEqual(got, b"Subject: inner\r\n\r\n")

    def test_header_fields_none_matching_is_a_blank_line(self) -> None:
        self.assertEqual(
            self.section("BODY[HEADER.FIELDS (X-None)]", b"BODY[HEADER.FIELDS (X-None)]"), b"\r\n"
        )


class PartialTests(unittest.TestCase):
    def test_partial_ranges(self) -> None:
        response = fetch(NESTED, "BODY.PEEK[]<0.100>")
        self.assertIn(b"BODY[]<0> {100}\r\n", response)
        self.assertEqual(body_of(response, b"BODY[]<0>"), NESTED[:100])
        self.assertEqual(body_of(fetch(NESTED, "BODY[1]<6.100>"), b"BODY[1]<6>"), b"there")
        self.assertEqual(
            body_of(
                fetch(NESTED, "BODY[HEADER.FIELDS (Subject)]<9.6>"),
                b"BODY[HEADER.FIELDS (Subject)]<9>",
            ),
            b"Nested",
        )

    def test_out_of_range_partial_is_empty(self) -> None:
        self.assertEqual(fetch(NESTED, "BODY[1]<11.5>"), b'* 3 FETCH (BODY[1]<11> "")\r\n')
        self.assertEqual(fetch(NESTED, "BODY[]<99999.5>"), b'* 3 FETCH (BODY[]<99999> "")\r\n')


class BigLiteralTests(unittest.TestCase):
    def test_big_sections_are_file_ranges(self) -> None:
        body = b"x" * (SMALL_READ * 3) + b"\r\n"
        raw = b"Subject: big\r\n\r\n" + body
        spec = parse_fetch_items(toks("(UID BODY[TEXT] BODY[]<10.100000>)"))
        pieces = render_fetch(
            spec, record(raw), 1, io.BytesIO(raw), with_uid=False, with_modseq=False
        )
        ranges = [p for p in pieces if isinstance(p, FileRange)]
        self.assertEqual(ranges, [FileRange(16, len(body)), FileRange(10, 100000)])
        response = joined(pieces, raw)
        check_well_formed(response)
        self.assertEqual(body_of(response, b"BODY[TEXT]"), body)

    def test_small_sections_are_read_here(self) -> None:
        spec = parse_fetch_items(toks("BODY[]"))
        pieces = render_fetch(
            spec, record(NESTED), 1, io.BytesIO(NESTED), with_uid=False, with_modseq=False
        )
        self.assertEqual(pieces, [b"* 1 FETCH (BODY[] {%d}\r\n" % len(NESTED) + NESTED + b")\r\n"])


class BinaryTests(unittest.TestCase):
    def test_binary_decodes(self) -> None:
        response = fetch(NESTED, "(BINARY.PEEK[3] BINARY.SIZE[3] BINARY[1]<0.5>)")
        self.assertEqual(body_of(response, b"BINARY[3]"), b"%PDF-1.4\n")
        self.assertIn(b"BINARY.SIZE[3] 9", response)
        self.assertEqual(body_of(response, b"BINARY[1]<0>"), b"Hello")


HOSTILE = crlf(
    'Content-Type: multipart/mixed; boundary="B"\n'
    "Subject: hostile\n"
    "\n"
    "--B\n"
    "Content-Type: text/plain; charset=\n"
    "\n"
    "no charset value\n"
    "--B\n"
    'Content-Type: application/octet-stream; name="a;b.txt"; Type=Weird\n'
    "\n"
    "quoted semicolon\n"
    "--B\n"
    "\n"
    "no content type at all\n"
    "--B--\n"
)


class HostileTests(unittest.TestCase):
    def test_hostile_mime_renders(self) -> None:
        response = fetch(HOSTILE, "(BODYSTRUCTURE BODY[1] BODY[2] BODY[3])")
        self.assertIn(
            b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 16 1 NIL NIL NIL NIL)', response
        )
        self.assertIn(b'("NAME" "a;b.txt" "TYPE" "Weird")', response)
        self.assertIn(
            b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 22 1 NIL NIL NIL NIL)', response
        )
        self.assertEqual(body_of(response, b"BODY[3]"), b"no content type at all")

    def test_five_thousand_parts(self) -> None:
        raw = (
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + b"".join(
                b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(5000)
            )
            + b"--b--\r\n"
        )
        response = fetch(raw, "(BODYSTRUCTURE BODY[1999] BODY[4999])")
        self.assertEqual(body_of(response, b"BODY[1999]"), b"part 1998")
        self.assertIn(b'"APPLICATION" "OCTET-STREAM"', response)  # the parser's cap

    def test_garbage_parse_never_raises(self) -> None:
        garbage: list[Any] = [
            {},
            None,
            [],
            "x",
            {"body": {"type": 5, "children": "x", "params": [[1, 2], "a"], "size": -3}},
            {"body": {"type": "multipart", "children": [], "header_start": 0, "body_end": 10**9}},
            {
                "body": {
                    "type": "message",
                    "subtype": "rfc822",
                    "message": 3,
                    "header_start": 0,
                    "body_start": 0,
                    "body_end": 5,
                    "section": "1",
                }
            },
            {"envelope": {"from": [1, {"name": 3}], "subject": ["x"], "date": 5}},
            {
                "body": {
                    "type": "text",
                    "section": "1",
                    "header_start": 0,
                    "body_start": "a",
                    "body_end": 5,
                    "disposition": ["x"],
                    "language": 5,
                }
            },
        ]
        nested: dict[str, Any] = {"type": "text"}
        for _ in range(500):
            nested = {"type": "multipart", "subtype": "mixed", "children": [nested]}
        garbage.append({"body": {**nested, "header_start": 0, "body_start": 0, "body_end": 1}})
        items = (
            "(ENVELOPE BODYSTRUCTURE BODY BODY[1] BODY[1.MIME] BODY[2.HEADER] BINARY[1]"
            " BINARY.SIZE[1])"
        )
        for parsed in garbage:
            response = fetch(NESTED, items, record(NESTED, parsed=parsed))
            self.assertIn(b"BODYSTRUCTURE (", response)

    def test_unreadable_file_gives_an_empty_section(self) -> None:
        spec = parse_fetch_items(toks("(UID BODY[1])"))
        pieces = render_fetch(spec, record(NESTED), 1, None, with_uid=False, with_modseq=False)
        self.assertEqual(pieces, [b'* 1 FETCH (UID 7 BODY[1] "")\r\n'])
        self.flushLoggedErrors()

    def test_no_parse_at_all(self) -> None:
        """A row stored without a parse: sections from a scan of the header, a text/plain."""
        msg = record(NESTED, parsed={}, header_size=0)
        response = fetch(NESTED, "(BODY[HEADER] BODY[TEXT] BODYSTRUCTURE ENVELOPE)", msg)
        self.assertEqual(body_of(response, b"BODY[HEADER]"), NESTED[:HEADER_END])
        self.assertEqual(body_of(response, b"BODY[TEXT]"), NESTED[HEADER_END:])
        self.assertIn(b"ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", response)
