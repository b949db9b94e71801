"""Big and hostile inputs parse in linear time."""

from __future__ import annotations

import base64
import os
import time

from twisted.trial import unittest

from a3mail.mime import parse_message

from .support import crlf


class PerformanceTests(unittest.TestCase):
    """Time limits are generous; quadratic behaviour would blow them by far."""

    def assertFast(self, data: bytes, seconds: float = 2.0) -> None:
        start = time.perf_counter()
        parse_message(data)
        elapsed = time.perf_counter() - start
        self.assertLess(elapsed, seconds)

    def test_50mb_base64_attachment(self) -> None:
        """A 50 MB message with one base64 attachment parses in well under 2 s."""
        payload = base64.encodebytes(os.urandom(37_000_000)).replace(b"\n", b"\r\n")
        raw = (
            crlf(
                "From: a@b.c\nSubject: big\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
                "Content-Type: text/plain\n\nYour code is 482913\n--B\n"
                "Content-Type: application/zip; name=big.zip\nContent-Transfer-Encoding: base64\n\n"
            )
            + payload
            + b"\r\n--B--\r\n"
        )
        self.assertGreater(len(raw), 50_000_000)
        start = time.perf_counter()
        p = parse_message(raw)
        self.assertLess(time.perf_counter() - start, 2.0)
        self.assertEqual(p.attachments[0]["size"], 37_000_000)
        self.assertEqual(p.verification_code, "482913")

    def test_megabyte_lines(self) -> None:
        """Lines of megabytes in headers and bodies are fine."""
        self.assertFast(crlf("Subject: " + "s" * 3_000_000 + "\n\n" + "x" * 5_000_000))
        self.assertFast(crlf("Content-Type: text/html\n\n" + "<b>y</b>" * 500_000))

    def test_hostile_patterns(self) -> None:
        """Inputs built to trigger backtracking or rescans stay fast."""
        self.assertFast(crlf("Content-Type: multipart/mixed; boundary=B\n\n") + b"x--B" * 2_000_000)
        self.assertFast(crlf("Content-Type: text/html\n\n") + b"<a " * 1_000_000)
        self.assertFast(crlf("Content-Type: text/plain\n\n") + b"code 1234 " * 500_000)
        self.assertFast(b"To: " + b"(" * 2_000_000 + b"\r\n\r\n")
        self.assertFast(b"Subject: " + b"=?utf-8?q?a?= " * 500_000 + b"\r\n\r\n")
        self.assertFast(b'Content-Type: text/plain; a="' + b'\\"' * 2_000_000 + b"\r\n\r\n")
        self.assertFast(b"\n" * 10_000_000)
