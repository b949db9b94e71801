"""The MIME tree: part numbering, byte offsets, defaults, limits, broken input."""

from __future__ import annotations

import mmap
import tempfile

from twisted.trial import unittest

from a3mail.mime import parse_message

from .support import NESTED, by_section, crlf, walk


class NumberingTests(unittest.TestCase):
    """Part numbers follow RFC 3501 6.4.5."""

    def test_nested_numbering(self) -> None:
        """multipart/alternative, attachment and nested message/rfc822 are numbered per RFC 3501."""
        p = parse_message(NESTED)
        sections = [n["section"] for n in walk(p.body)]
        self.assertEqual(sections, ["", "1", "1.1", "1.2", "2", "3", "3", "3.1", "3.2", "3.2.1"])
        nodes = by_section(p.body)
        self.assertEqual((nodes["1"]["type"], nodes["1"]["subtype"]), ("multipart", "alternative"))
        self.assertEqual(nodes["1.2"]["subtype"], "html")
        self.assertEqual(nodes["3"]["subtype"], "rfc822")
        self.assertEqual(nodes["3.2.1"]["type"], "text")

    def test_single_part_root_is_1(self) -> None:
        """The body of a non-multipart message is part 1."""
        p = parse_message(crlf("Subject: x\n\nhello\n"))
        self.assertEqual(p.body["section"], "1")
        self.assertNotIn("children", p.body)

    def test_encapsulated_single_part_is_n_1(self) -> None:
        """A non-multipart body inside message/rfc822 part 2 is part 2.1."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\n"
            "Content-Type: message/rfc822\n\nSubject: fwd\n\nforwarded\n--b--\n"
        )
        p = parse_message(raw)
        message = by_section(p.body)["2"]["message"]
        self.assertEqual(message["body"]["section"], "2.1")
        self.assertEqual(message["envelope"]["subject"], "fwd")

    def test_digest_parts_default_to_message_rfc822(self) -> None:
        """In multipart/digest a part without Content-Type is message/rfc822."""
        raw = crlf(
            "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody one\n--d--\n"
        )
        part = by_section(parse_message(raw).body)["1"]
        self.assertEqual((part["type"], part["subtype"]), ("message", "rfc822"))
        self.assertEqual(part["message"]["envelope"]["subject"], "one")


class OffsetTests(unittest.TestCase):
    """Offsets let IMAP serve parts byte-exact from the stored file."""

    def test_body_offsets_slice_exact_part_bodies(self) -> None:
        """data[body_start:body_end] is the exact body of each part."""
        p = parse_message(NESTED)
        nodes = by_section(p.body)
        body = {s: NESTED[n["body_start"] : n["body_end"]] for s, n in nodes.items()}
        self.assertEqual(body["1.1"], b"Hello Bob")
        self.assertEqual(body["1.2"], b"<p>Hello Bob</p>")
        self.assertEqual(body["2"], b"JVBERi0xLjQK")
        self.assertEqual(body["3.1"], b"inner text")
        self.assertEqual(body["3.2.1"], b"deepest body")
        self.assertTrue(body["3"].startswith(b"From: Carol"))
        self.assertTrue(body["3"].endswith(b"--In--"))

    def test_header_offsets_slice_exact_mime_headers(self) -> None:
        """data[header_start:body_start] is the part's MIME header with the blank line."""
        p = parse_message(NESTED)
        nodes = by_section(p.body)
        two = nodes["2"]
        self.assertEqual(
            NESTED[two["header_start"] : two["body_start"]],
            crlf(
                "Content-Type: application/pdf; name=report.pdf\n"
                "Content-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment; filename=report.pdf\n\n"
            ),
        )
        inner = nodes["3.1"]
        self.assertEqual(
            NESTED[inner["header_start"] : inner["body_start"]], b"Content-Type: text/plain\r\n\r\n"
        )

    def test_header_size_includes_blank_line(self) -> None:
        """header_size counts the top-level header and its blank line."""
        raw = crlf("Subject: a\nFrom: b@c\n\nbody\n")
        p = parse_message(raw)
        self.assertEqual(raw[: p.header_size], crlf("Subject: a\nFrom: b@c\n\n"))
        self.assertEqual(p.size, len(raw))

    def test_crlf_before_boundary_belongs_to_boundary(self) -> None:
        """The line break before a delimiter is not part of the preceding body."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nline1\nline2\n\n--b--\n")
        part = by_section(parse_message(raw).body)["1"]
        self.assertEqual(raw[part["body_start"] : part["body_end"]], b"line1\r\nline2\r\n")
        self.assertEqual(part["lines"], 2)

    def test_boundary_with_trailing_whitespace(self) -> None:
        """Delimiter lines may carry trailing white space."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\none\n--b--  \nepilogue\n"
        )
        p = parse_message(raw)
        self.assertEqual(len(p.body["children"]), 1)
        self.assertEqual(p.text, "one")

    def test_boundary_prefix_is_not_a_delimiter(self) -> None:
        """A line starting with --boundary followed by more text is body content."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--bb\ntwo\n--b--\n")
        p = parse_message(raw)
        self.assertEqual(len(p.body["children"]), 1)
        self.assertEqual(p.text, "one\n--bb\ntwo")

    def test_size_and_lines(self) -> None:
        """size is the octets of the body as stored; lines counts text lines."""
        raw = crlf("Content-Type: text/plain\n\na\nbb\nccc")
        p = parse_message(raw)
        self.assertEqual(p.body["size"], len(b"a\r\nbb\r\nccc"))
        self.assertEqual(p.body["lines"], 3)

    def test_mmap_and_memoryview_inputs(self) -> None:
        """mmap and memoryview inputs give the same result as bytes."""
        expected = parse_message(NESTED)
        self.assertEqual(parse_message(memoryview(NESTED)), expected)
        with tempfile.TemporaryFile() as f:
            f.write(NESTED)
            f.flush()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                self.assertEqual(parse_message(m), expected)


class ParameterTests(unittest.TestCase):
    """Content-Type parameters for BODYSTRUCTURE."""

    def test_parameter_value_case_preserved(self) -> None:
        """boundary "XX" stays "XX"; names are lowercased."""
        raw = crlf('Content-Type: Multipart/Mixed; BOUNDARY="XX"\n\n--XX\n\nx\n--XX--\n')
        p = parse_message(raw)
        self.assertEqual((p.body["type"], p.body["subtype"]), ("multipart", "mixed"))
        self.assertEqual(p.body["params"], [["boundary", "XX"]])

    def test_charset_without_value_is_skipped(self) -> None:
        """``charset`` with no value does not raise and is left out."""
        raw = crlf("Content-Type: text/plain; charset; format=flowed; delsp=\n\nhi\n")
        p = parse_message(raw)
        self.assertEqual(p.body["params"], [["format", "flowed"]])
        self.assertEqual(p.text, "hi\n")

    def test_quoted_semicolon_kept(self) -> None:
        """A quoted ';' stays inside the value; backslash escapes are resolved."""
        raw = crlf('Content-Type: text/plain; name="a;b \\"c\\".txt"; charset=utf-8\n\nx')
        p = parse_message(raw)
        self.assertEqual(p.body["params"], [["name", 'a;b "c".txt'], ["charset", "utf-8"]])

    def test_part_without_content_type_defaults(self) -> None:
        """A part with no Content-Type is text/plain; charset=us-ascii, never NIL."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nX-Other: 1\n\nplain\n--b--\n")
        part = by_section(parse_message(raw).body)["1"]
        self.assertEqual(
            (part["type"], part["subtype"], part["params"]),
            ("text", "plain", [["charset", "us-ascii"]]),
        )
        self.assertEqual(part["encoding"], "7BIT")

    def test_invalid_content_type_defaults(self) -> None:
        """An unusable Content-Type (no subtype) falls back to text/plain."""
        p = parse_message(crlf("Content-Type: garbage\n\nx"))
        self.assertEqual((p.body["type"], p.body["subtype"]), ("text", "plain"))

    def test_extension_fields(self) -> None:
        """Content-ID, -Description, -MD5, -Language, -Location and the encoding are reported."""
        raw = crlf(
            "Content-Type: image/png\nContent-ID: <img1@x>\nContent-Description: a logo\n"
            "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\nContent-Language: en, fr\n"
            "Content-Location: http://x/logo.png\nContent-Transfer-Encoding: Base64\n"
            "Content-Disposition: Inline; filename=logo.png\n\niVBORw0K\n"
        )
        body = parse_message(raw).body
        self.assertEqual(body["id"], "<img1@x>")
        self.assertEqual(body["description"], "a logo")
        self.assertEqual(body["md5"], "Q2hlY2sgSW50ZWdyaXR5IQ==")
        self.assertEqual(body["language"], ["en", "fr"])
        self.assertEqual(body["location"], "http://x/logo.png")
        self.assertEqual(body["encoding"], "BASE64")
        self.assertEqual(body["disposition"], ["inline", [["filename", "logo.png"]]])
        self.assertIsNone(body["lines"])


class BrokenInputTests(unittest.TestCase):
    """Malformed messages degrade instead of failing."""

    def test_bare_lf_message(self) -> None:
        """Bare LF line ends are handled like CRLF, with exact offsets."""
        raw = NESTED.replace(b"\r\n", b"\n")
        p = parse_message(raw)
        nodes = by_section(p.body)
        self.assertEqual(raw[nodes["1.1"]["body_start"] : nodes["1.1"]["body_end"]], b"Hello Bob")
        self.assertEqual(
            raw[nodes["3.2.1"]["body_start"] : nodes["3.2.1"]["body_end"]], b"deepest body"
        )
        self.assertEqual(p.text, "Hello Bob")

    def test_truncated_multipart(self) -> None:
        """A missing close delimiter ends the last part at the end of the enclosing part."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo, cut he")
        p = parse_message(raw)
        two = by_section(p.body)["2"]
        self.assertEqual(two["body_end"], len(raw))
        self.assertEqual(raw[two["body_start"] :], b"two, cut he")
        self.assertEqual(p.text, "one\ntwo, cut he")

    def test_nested_missing_close_ends_at_outer_boundary(self) -> None:
        """An inner multipart without close delimiter stops at the outer delimiter."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=out\n\n--out\n"
            "Content-Type: multipart/alternative; boundary=in\n\n--in\n\ninner\n"
            "--out\n\nsecond\n--out--\n"
        )
        nodes = by_section(parse_message(raw).body)
        self.assertEqual(raw[nodes["1.1"]["body_start"] : nodes["1.1"]["body_end"]], b"inner")
        self.assertEqual(raw[nodes["2"]["body_start"] : nodes["2"]["body_end"]], b"second")

    def test_multipart_without_delimiters(self) -> None:
        """A multipart with no delimiter lines gets one text/plain part with the whole body."""
        raw = crlf("Content-Type: multipart/mixed; boundary=zz\n\njust text\n")
        p = parse_message(raw)
        (child,) = p.body["children"]
        self.assertEqual((child["section"], child["type"]), ("1", "text"))
        self.assertEqual(p.text, "just text\n")

    def test_multipart_without_boundary_parameter(self) -> None:
        """A multipart with no boundary parameter still has one child."""
        p = parse_message(crlf("Content-Type: multipart/mixed\n\nbody\n"))
        self.assertEqual(len(p.body["children"]), 1)

    def test_part_without_header(self) -> None:
        """A part whose first line is not a header field has an empty header."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nno header here\n--b--\n")
        part = by_section(parse_message(raw).body)["1"]
        self.assertEqual(part["header_start"], part["body_start"])
        self.assertEqual(raw[part["body_start"] : part["body_end"]], b"no header here")

    def test_header_only_message(self) -> None:
        """Without a blank line the whole message is header and the body is empty."""
        raw = crlf("Subject: only\nFrom: a@b.c\n")
        p = parse_message(raw)
        self.assertEqual(p.header_size, len(raw))
        self.assertEqual(
            (p.body["body_start"], p.body["body_end"], p.body["size"]), (len(raw), len(raw), 0)
        )
        self.assertEqual(p.subject, "only")

    def test_empty_input(self) -> None:
        """Empty input gives an empty text/plain message."""
        p = parse_message(b"")
        self.assertEqual((p.size, p.header_size, p.body["section"]), (0, 0, "1"))
        self.assertEqual((p.subject, p.text, p.attachments), ("", "", []))

    def test_deep_nesting_limit(self) -> None:
        """Containers deeper than max_depth become opaque application/octet-stream parts."""
        raw = b"".join(
            b"Content-Type: multipart/mixed; boundary=B%d\r\n\r\n--B%d\r\n" % (i, i)
            for i in range(500)
        )
        p = parse_message(raw, max_depth=10)
        nodes = list(walk(p.body))
        self.assertEqual(len(nodes), 11)
        self.assertEqual((nodes[-1]["type"], nodes[-1]["subtype"]), ("application", "octet-stream"))
        self.assertEqual(nodes[-1]["section"], "1.1.1.1.1.1.1.1.1.1")

    def test_deep_message_nesting_limit(self) -> None:
        """message/rfc822 nesting is limited the same way."""
        raw = b"Content-Type: message/rfc822\r\n\r\n" * 1000
        nodes = list(walk(parse_message(raw).body))
        self.assertEqual(len(nodes), 41)
        self.assertEqual(nodes[-1]["subtype"], "octet-stream")

    def test_max_parts_limit(self) -> None:
        """After max_parts parts the rest is one opaque part."""
        raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\nx\n" * 100 + "--b--\n")
        p = parse_message(raw, max_parts=10)
        children = p.body["children"]
        self.assertEqual(len(children), 10)
        self.assertEqual(children[-1]["subtype"], "octet-stream")
        self.assertEqual(children[-1]["body_end"], len(raw))

    def test_encoding_token_cleaned(self) -> None:
        """The transfer encoding is the first token, uppercased, without junk."""
        raw = crlf('Content-Transfer-Encoding: "base64"; junk\n\naGk=\n')
        p = parse_message(raw)
        self.assertEqual(p.body["encoding"], "BASE64")
        self.assertEqual(p.text, "hi")
