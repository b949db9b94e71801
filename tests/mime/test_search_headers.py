"""ParsedMessage.headers: the decoded header fields kept for IMAP SEARCH HEADER/CC/BCC/TEXT."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.mime import parse_message
from a3mail.mime.parse import MAX_SEARCH_HEADER_CHARS, MAX_SEARCH_HEADERS


class SearchHeadersTests(unittest.TestCase):
    def test_fields_in_order_lower_cased_unfolded_and_decoded(self) -> None:
        raw = (
            b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
            b"X-Custom: one\r\n two\r\n"
            b"CC: Carol <carol@c.example>\r\n"
            b"\r\nbody\r\n"
        )
        self.assertEqual(
            parse_message(raw).headers,
            [["subject", "Grüße"], ["x-custom", "one two"], ["cc", "Carol <carol@c.example>"]],
        )
        self.assertEqual(parse_message(raw).to_json()["headers"][0], ["subject", "Grüße"])

    def test_capped(self) -> None:
        raw = b"".join(b"X-N: %d\r\n" % n for n in range(MAX_SEARCH_HEADERS + 50))
        raw += b"X-Long: " + b"a" * (MAX_SEARCH_HEADER_CHARS * 2) + b"\r\n\r\nbody\r\n"
        headers = parse_message(raw).headers
        self.assertEqual(len(headers), MAX_SEARCH_HEADERS)
        long = parse_message(b"X-Long: " + b"a" * (MAX_SEARCH_HEADER_CHARS * 2) + b"\r\n\r\n")
        self.assertEqual(len(long.headers[0][1]), MAX_SEARCH_HEADER_CHARS)
