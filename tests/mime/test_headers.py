"""Header fields, RFC 2047 encoded words and RFC 2231 parameters."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.mime import parse_message
from a3mail.mime.headers import header_str, parse_headers
from a3mail.mime.params import parse_content_type, split_value
from a3mail.mime.rfc2047 import decode_words

from .support import by_section, crlf


class HeaderBlockTests(unittest.TestCase):
    """Splitting and unfolding header blocks."""

    def test_unfolding(self) -> None:
        """Folded fields are unfolded: CRLF before white space is removed."""
        headers = parse_headers(b"Subject: a long\r\n  subject\r\n\tline\r\nX: y\r\n\r\n")
        self.assertEqual(headers.get("subject"), "a long  subject\tline")
        self.assertEqual(headers.get("SUBJECT"), headers.get("subject"))

    def test_repeated_fields_and_garbage_lines(self) -> None:
        """Lookups return the first field; non-field lines are skipped."""
        headers = parse_headers(b"From x Mon Jan 1\nReceived: a\nnot a field\nReceived: b\n")
        self.assertEqual(headers.get_all("received"), ["a", "b"])
        self.assertEqual(headers.get("received"), "a")
        self.assertEqual(len(headers), 2)

    def test_raw_utf8_header(self) -> None:
        """Raw UTF-8 header values (RFC 6532) decode as UTF-8."""
        p = parse_message("Subject: Grüße aus 東京\r\n\r\nx".encode())
        self.assertEqual(p.subject, "Grüße aus 東京")
        self.assertEqual(p.envelope["subject"], "Grüße aus 東京")

    def test_invalid_utf8_header_is_latin1(self) -> None:
        """Header bytes that are not UTF-8 decode as latin-1, losslessly."""
        self.assertEqual(header_str(b"caf\xe9"), "café")
        p = parse_message(b"Subject: caf\xe9\r\n\r\n")
        self.assertEqual(p.envelope["subject"], "café")

    def test_nul_is_replaced(self) -> None:
        """NUL (which PostgreSQL refuses) never reaches the result."""
        p = parse_message(b"Subject: a\x00b\r\n\r\n")
        self.assertEqual(p.subject, "a\ufffdb")


class EncodedWordTests(unittest.TestCase):
    """RFC 2047 decoding of subjects and names."""

    def test_subjects_in_several_charsets(self) -> None:
        """B and Q encoded words in UTF-8, GB2312, ISO-2022-JP, KOI8-R, latin-1 decode."""
        cases = {
            "=?UTF-8?B?5L2g5aW9?=": "你好",
            "=?gb2312?B?xOO6ww==?=": "你好",
            "=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=": "こんにちは",
            "=?koi8-r?B?8NLJ18XU?=": "Привет",
            "=?iso-8859-1?q?caf=E9_cr=E8me?=": "café crème",
            "=?ks_c_5601-1987?B?vsiz58fPvLy/5A==?=": "안녕하세요",
            "=?windows-1252?Q?=93quoted=94?=": "\u201cquoted\u201d",
        }
        for raw, expected in cases.items():
            p = parse_message(crlf(f"Subject: {raw}\n\n"))
            self.assertEqual(p.subject, expected, raw)
            self.assertEqual(p.envelope["subject"], raw)

    def test_adjacent_words_joined(self) -> None:
        """White space between encoded words goes; a character split across words survives."""
        self.assertEqual(decode_words("=?utf-8?B?5L2g5Q==?= =?utf-8?B?pb0=?="), "你好")
        self.assertEqual(decode_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?="), "ab")
        self.assertEqual(decode_words("x =?utf-8?q?a?= y"), "x a y")

    def test_malformed_words_left_alone(self) -> None:
        """Text that is not a complete encoded word is kept as it is."""
        for text in ("=?utf-8?X?abc?=", "=?utf-8?B?abc", "=??B?abc?=", "plain =? text"):
            self.assertEqual(decode_words(text), text)

    def test_bad_payloads_do_not_raise(self) -> None:
        """Unknown charsets, bad base64 and bad escapes degrade to replacement text."""
        self.assertEqual(decode_words("=?x-unknown?q?abc?="), "abc")
        self.assertEqual(decode_words("=?utf-8?B?!!!?="), "")
        self.assertEqual(decode_words("=?utf-8?Q?=ZZ=E9?="), "=ZZ\ufffd")
        self.assertEqual(decode_words("=?base64?q?abc?="), "abc")


class ParameterTests(unittest.TestCase):
    """Parameter parsing, including RFC 2231."""

    def test_rfc2231_charset_and_language(self) -> None:
        """``name*=charset'lang'%XX`` is percent-decoded in its charset."""
        _value, params = split_value("attachment; filename*=UTF-8'en'%E2%82%AC%20rates.pdf")
        self.assertEqual(params, [["filename", "€ rates.pdf"]])

    def test_rfc2231_continuations(self) -> None:
        """Numbered continuations are joined in order, mixing encoded and plain segments."""
        _value, params = split_value(
            "attachment; filename*1=\"-part two\"; filename*0*=iso-8859-1''caf%E9; size=3"
        )
        self.assertEqual(params, [["filename", "café-part two"], ["size", "3"]])

    def test_rfc2231_wins_over_plain(self) -> None:
        """An RFC 2231 value replaces a plain one of the same name."""
        _value, params = split_value("attachment; filename=old.txt; filename*=utf-8''new.txt")
        self.assertEqual(params, [["filename", "new.txt"]])

    def test_rfc2231_filename_in_attachment(self) -> None:
        """Attachments report the decoded RFC 2231 file name."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n--b\n"
            "Content-Type: application/octet-stream\n"
            "Content-Disposition: attachment;\n filename*0*=utf-8''%E6%8A%A5%E5%91%8A;\n"
            " filename*1=.docx\n\ndata\n--b--\n"
        )
        p = parse_message(raw)
        self.assertEqual(p.attachments[0]["filename"], "报告.docx")
        disposition = by_section(p.body)["2"]["disposition"]
        self.assertEqual(disposition, ["attachment", [["filename", "报告.docx"]]])

    def test_garbage_parameters(self) -> None:
        """Empty names, missing '=', unterminated quotes and junk never raise."""
        self.assertEqual(
            split_value('text/plain; ; =x; a="unterminated'),
            ("text/plain", [["a", "unterminated"]]),
        )
        self.assertEqual(split_value(";;;"), ("", []))
        self.assertEqual(split_value('x; a="1" junk; b=2'), ("x", [["a", "1"], ["b", "2"]]))
        self.assertEqual(split_value("x; a*0*=%ZZ%; a*x=1"), ("x", [["a", "%ZZ%"], ["a*x", "1"]]))

    def test_duplicate_parameters_keep_first(self) -> None:
        """A repeated parameter keeps its first value."""
        self.assertEqual(split_value("x; a=1; A=2"), ("x", [["a", "1"]]))

    def test_content_type_with_comment(self) -> None:
        """Comments in the type are ignored; the type is lowercased."""
        self.assertEqual(
            parse_content_type("Text/HTML (fancy); charset=UTF-8"),
            ("text", "html", [["charset", "UTF-8"]]),
        )
        self.assertIsNone(parse_content_type("text/"))
        self.assertIsNone(parse_content_type(None))
