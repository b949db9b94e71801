"""Finding and decoding one part of a stored message from the cached body structure."""

from __future__ import annotations

import base64

from twisted.trial import unittest

from a3mail.mime.parse import parse_message
from a3mail.mime.parts import find_part, part_bytes

INNER = (
    b"From: a@x.example\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
    b"--in\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
    b"--in\r\nContent-Type: application/octet-stream; name=deep.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x00deep\xff") + b"\r\n"
    b"--in--\r\n"
)
OUTER = (
    b"From: b@y.example\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
    b"--out\r\nContent-Type: text/plain\r\n\r\nouter text\r\n"
    b"--out\r\nContent-Type: text/csv; name=t.csv\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db,c\r\n"
    b"--out\r\nContent-Type: message/rfc822\r\n\r\n" + INNER + b"--out--\r\n"
)


class PartTests(unittest.TestCase):
    def setUp(self) -> None:
        self.parsed = parse_message(OUTER).to_json()

    def test_top_level_part_decoded(self):
        node = find_part(self.parsed["body"], "2")
        assert node is not None
        self.assertEqual(part_bytes(OUTER, node), b"a=b,c")

    def test_part_inside_an_attached_message(self):
        node = find_part(self.parsed["body"], "3.2")
        assert node is not None
        self.assertEqual(part_bytes(OUTER, node), b"\x00deep\xff")

    def test_unknown_sections_and_containers_are_none(self):
        for section in ("9", "", "3.9", "0"):
            self.assertIsNone(find_part(self.parsed["body"], section))
        self.assertIsNone(find_part(None, "1"))

    def test_offsets_outside_the_message_give_nothing(self):
        node = dict(find_part(self.parsed["body"], "2") or {})
        self.assertEqual(part_bytes(OUTER[:10], node), b"")
