"""The JSON form of ParsedMessage."""

from __future__ import annotations

import json

from twisted.trial import unittest

from a3mail.mime import PARSER_VERSION, ParsedMessage, parse_message

from .corpus import CASES
from .support import NESTED, crlf


class JsonTests(unittest.TestCase):
    """to_json / from_json."""

    def test_round_trip(self) -> None:
        """to_json -> json text -> from_json gives an equal ParsedMessage."""
        raw = crlf("Date: Mon, 15 Jan 2024 10:00:00 +0800\nSubject: code 482913\n\n") + NESTED
        for data in (raw, NESTED, b"", *(c[1] for c in CASES)):
            p = parse_message(data)
            text = json.dumps(p.to_json(), ensure_ascii=False, allow_nan=False)
            self.assertEqual(ParsedMessage.from_json(json.loads(text)), p)

    def test_json_fields(self) -> None:
        """The JSON uses "from", an ISO 8601 date and a parser version."""
        d = parse_message(crlf("From: a@b.c\nDate: Mon, 15 Jan 2024 10:00:00 +0800\n\n")).to_json()
        self.assertEqual(d["v"], PARSER_VERSION)
        self.assertEqual(d["date"], "2024-01-15T10:00:00+08:00")
        self.assertEqual(d["from"], [{"name": "", "address": "a@b.c"}])
        self.assertEqual(
            set(d),
            {
                "v",
                "size",
                "header_size",
                "envelope",
                "body",
                "subject",
                "from",
                "to",
                "cc",
                "reply_to",
                "date",
                "message_id",
                "text",
                "html",
                "preview",
                "attachments",
                "verification_code",
                "headers",
            },
        )

    def test_json_is_postgres_safe(self) -> None:
        """Invalid bytes, NUL and lone surrogates never reach the JSON."""
        raw = b"Subject: \xff\x00=?utf-7?q?+2D8-?=\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+2D8-\x00"
        text = json.dumps(parse_message(raw).to_json(), ensure_ascii=False)
        text.encode("utf-8")
        self.assertNotIn("\\u0000", text)
        self.assertNotIn("\x00", text)
