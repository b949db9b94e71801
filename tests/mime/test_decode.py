"""Transfer encodings and charsets."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.mime import parse_message
from a3mail.mime.charsets import codec_for, decode_bytes
from a3mail.mime.decode import b64decode_tolerant, qp_decode

from .support import crlf


class TransferEncodingTests(unittest.TestCase):
    """base64 and quoted-printable decoding is tolerant."""

    def test_base64_tolerates_junk_and_padding(self) -> None:
        """Line breaks, junk characters, missing or inner padding are survived."""
        self.assertEqual(b64decode_tolerant(b"SGVs\r\nbG8*gd29y!bGQ"), b"Hello world")
        self.assertEqual(b64decode_tolerant(b"SGVsbG8=IHdvcmxk"), b"Hello world")
        self.assertEqual(b64decode_tolerant(b"SGVsbG8gd29ybGQ==="), b"Hello world")
        self.assertEqual(b64decode_tolerant(b"S"), b"")
        self.assertEqual(b64decode_tolerant(b"\xff\x00"), b"")

    def test_quoted_printable(self) -> None:
        """Soft line breaks (CRLF and LF) and escapes; bad escapes are kept."""
        self.assertEqual(qp_decode(b"caf=C3=A9 =\r\nau =\nlait =ZZ"), "café au lait =ZZ".encode())

    def test_base64_body_text(self) -> None:
        """A base64 text body is decoded in its charset."""
        raw = crlf(
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
            "5L2g5aW9\n77yM5LiW55WM\n"
        )
        self.assertEqual(parse_message(raw).text, "你好，世界")

    def test_quoted_printable_body_text(self) -> None:
        """A quoted-printable body is decoded and its line breaks normalised."""
        raw = crlf(
            "Content-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: Quoted-Printable\n\nd=E9j=E0 vu=\n!\nnext\n"
        )
        self.assertEqual(parse_message(raw).text, "déjà vu!\nnext\n")

    def test_8bit_body(self) -> None:
        """8bit bodies are decoded in the declared charset."""
        raw = b"Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4"
        self.assertEqual(parse_message(raw).text, "Привет")


class CharsetTests(unittest.TestCase):
    """Charset labels map to the right codecs; bad labels degrade."""

    def test_aliases(self) -> None:
        """Common mail labels map to the superset codecs."""
        self.assertEqual(codec_for("GB2312"), "gb18030")
        self.assertEqual(codec_for("ks_c_5601-1987"), "cp949")
        self.assertEqual(codec_for("Shift_JIS"), "cp932")
        self.assertEqual(codec_for('"iso-2022-jp"'), "iso2022_jp_2")
        self.assertEqual(codec_for("windows-1251"), "cp1251")
        self.assertEqual(codec_for("UTF8"), "utf-8")
        self.assertIsNone(codec_for("us-ascii"))

    def test_superset_characters(self) -> None:
        """Characters only in the superset decode (GBK in gb2312, NEC in Shift_JIS)."""
        self.assertEqual(decode_bytes("镕".encode("gbk"), "gb2312"), "镕")
        self.assertEqual(decode_bytes("①".encode("cp932"), "shift_jis"), "①")

    def test_unknown_and_non_text_charsets(self) -> None:
        """Unknown labels and non-text codecs (base64, rot13, undefined) fall back to UTF-8."""
        for label in ("x-unknown", "base64", "rot13", "undefined", "unicode_escape", "", None):
            self.assertEqual(decode_bytes("héllo".encode(), label), "héllo")

    def test_ascii_label_with_8bit_data(self) -> None:
        """Data labelled ASCII is read as UTF-8 when valid, else windows-1252."""
        self.assertEqual(decode_bytes("naïve".encode(), "us-ascii"), "naïve")
        self.assertEqual(decode_bytes(b"na\xefve \x93q\x94", "us-ascii"), "naïve \u201cq\u201d")

    def test_undecodable_bytes_are_replaced(self) -> None:
        """Invalid sequences become U+FFFD; NUL never gets through."""
        self.assertEqual(decode_bytes(b"a\xffb\x00", "utf-8"), "a\ufffdb\ufffd")
        self.assertEqual(decode_bytes(b"+2D8-", "utf-7"), "\ufffd")
