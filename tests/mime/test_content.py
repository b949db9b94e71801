"""Text, HTML, preview and attachments."""

from __future__ import annotations

import base64

from twisted.trial import unittest

from a3mail.mime import parse_message
from a3mail.mime.htmltext import html_to_text

from .support import NESTED, crlf


class TextTests(unittest.TestCase):
    """Which parts make up ``text`` and ``html``."""

    def test_alternative_text_and_html(self) -> None:
        """text comes from text/plain, html from text/html."""
        p = parse_message(NESTED)
        self.assertEqual(p.text, "Hello Bob")
        self.assertEqual(p.html, "<p>Hello Bob</p>")

    def test_inline_text_parts_joined(self) -> None:
        """All inline text/plain parts are joined with a newline."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\n"
            "Content-Type: text/plain\nContent-Disposition: inline\n\nsecond\n"
            "--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\nnot text\n--b--\n"
        )
        self.assertEqual(parse_message(raw).text, "first\nsecond")

    def test_html_only_gives_rendered_text(self) -> None:
        """Without text/plain, text is the HTML rendered as plain text."""
        raw = crlf(
            "Content-Type: text/html\n\n<html><head><style>p{x:y}</style></head>"
            "<body><p>Hi&nbsp;there &amp; welcome</p><script>alert(1)</script>"
            "<div>second   line</div></body></html>"
        )
        p = parse_message(raw)
        self.assertEqual(p.text, "Hi there & welcome\nsecond line")
        self.assertTrue(p.html.startswith("<html>"))

    def test_text_truncated(self) -> None:
        """text and html are cut at max_text_chars."""
        raw = crlf("Content-Type: text/plain\n\n" + "x" * 5000)
        p = parse_message(raw, max_text_chars=100)
        self.assertEqual(p.text, "x" * 100)

    def test_preview(self) -> None:
        """The preview is the start of the text with white space collapsed."""
        raw = crlf("Content-Type: text/plain\n\nHello\n\n   world\t" + "y" * 500)
        p = parse_message(raw)
        self.assertEqual(len(p.preview), 200)
        self.assertTrue(p.preview.startswith("Hello world yyy"))

    def test_message_rfc822_text_not_mixed_in(self) -> None:
        """The text of a forwarded message is not part of the outer text."""
        self.assertNotIn("inner", parse_message(NESTED).text)


class AttachmentTests(unittest.TestCase):
    """Which parts are attachments, and what is reported about them."""

    def test_attachment_list(self) -> None:
        """Attachments carry section, decoded name, type, decoded size, cid, disposition."""
        payload = bytes(range(256)) * 10
        encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
        raw = (
            crlf(
                "Content-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n\n"
                '<img src="cid:logo@x">\n--r\nContent-Type: image/png\nContent-ID: <logo@x>\n'
                "Content-Transfer-Encoding: base64\n\n"
            )
            + encoded.encode()
            + crlf(
                "--r\nContent-Type: application/octet-stream; name==?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\n"
                "\nabc\n--r--\n"
            )
        )
        p = parse_message(raw)
        self.assertEqual(
            p.attachments,
            [
                {
                    "section": "2",
                    "filename": None,
                    "content_type": "image/png",
                    "size": len(payload),
                    "content_id": "logo@x",
                    "disposition": "attachment",
                },
                {
                    "section": "3",
                    "filename": "résumé.pdf",
                    "content_type": "application/octet-stream",
                    "size": 3,
                    "content_id": None,
                    "disposition": "attachment",
                },
            ],
        )

    def test_inline_disposition_reported(self) -> None:
        """An inline image keeps disposition "inline"."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n--b\n"
            "Content-Type: image/gif\nContent-Disposition: inline; filename=a.gif\n\nGIF89a\n--b--\n"
        )
        (att,) = parse_message(raw).attachments
        self.assertEqual((att["disposition"], att["filename"]), ("inline", "a.gif"))

    def test_text_part_with_filename_is_attachment(self) -> None:
        """A text/plain part with a file name is an attachment, not body text."""
        raw = crlf(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
            "Content-Type: text/plain; name=notes.txt\n\nnotes\n--b--\n"
        )
        p = parse_message(raw)
        self.assertEqual(p.text, "body")
        self.assertEqual(p.attachments[0]["filename"], "notes.txt")

    def test_single_part_non_text_body_is_not_attachment(self) -> None:
        """A non-text message body without name or disposition is the main body."""
        p = parse_message(crlf("Content-Type: application/json\n\n{}"))
        self.assertEqual(p.attachments, [])

    def test_forwarded_message_is_attachment(self) -> None:
        """A message/rfc822 part is listed as an attachment."""
        types = [a["content_type"] for a in parse_message(NESTED).attachments]
        self.assertEqual(types, ["application/pdf", "message/rfc822"])


class HtmlToTextTests(unittest.TestCase):
    """The HTML renderer."""

    def test_blocks_entities_and_skipped_elements(self) -> None:
        """Blocks become lines; entities are unescaped; script/style/title dropped."""
        html = (
            "<!DOCTYPE html><title>T</title><!-- c --><table><tr><td>a&lt;b</td>"
            "<td>&#x4e2d;&eacute;</td></tr></table><br/>x <b>y</b><SCRIPT>bad()</SCRIPT>z"
        )
        self.assertEqual(html_to_text(html), "a<b\n中é\nx yz")

    def test_hostile_markup(self) -> None:
        """Unclosed tags and comments do not raise or loop."""
        for html in (
            "<",
            "<a",
            "<!--",
            "<script>x",
            "a < b",
            "<head>text",
            "<<<>>>",
            "&#99999999;",
        ):
            html_to_text(html)
        self.assertEqual(html_to_text("a < b"), "a < b")
        self.assertEqual(html_to_text("<head>text"), "text")
