"""The IMAP ENVELOPE and the decoded address lists."""

from __future__ import annotations

import datetime

from twisted.trial import unittest

from a3mail.mime import parse_message
from a3mail.mime.addresses import MISSING_HOST, parse_addresses
from a3mail.mime.envelope import parse_date

from .support import crlf


def addr(name, mailbox, host, adl=None):
    return {"name": name, "adl": adl, "mailbox": mailbox, "host": host}


GROUP_END = addr(None, None, None)


class AddressListTests(unittest.TestCase):
    """RFC 5322 address lists as RFC 3501 address structures."""

    def test_simple_forms(self) -> None:
        """name-addr, addr-spec, quoted names and comments."""
        self.assertEqual(
            parse_addresses('"Doe, John" <john@x.org>, jane@y.org (Jane Y), <bare@z.org>'),
            [
                addr("Doe, John", "john", "x.org"),
                addr("Jane Y", "jane", "y.org"),
                addr(None, "bare", "z.org"),
            ],
        )

    def test_group_syntax(self) -> None:
        """Groups are marked with a start (mailbox = name) and an end (all NIL) entry."""
        self.assertEqual(
            parse_addresses("Friends: a@x.org, B <b@y.org>;, c@z.org, undisclosed-recipients:;"),
            [
                addr(None, "Friends", None),
                addr(None, "a", "x.org"),
                addr("B", "b", "y.org"),
                GROUP_END,
                addr(None, "c", "z.org"),
                addr(None, "undisclosed-recipients", None),
                GROUP_END,
            ],
        )

    def test_unterminated_group_is_closed(self) -> None:
        """A group without ';' is closed at the end of the list."""
        self.assertEqual(
            parse_addresses("Team: a@x.org"),
            [addr(None, "Team", None), addr(None, "a", "x.org"), GROUP_END],
        )

    def test_encoded_names_stay_raw(self) -> None:
        """The ENVELOPE keeps encoded words; the decoded list decodes them."""
        raw = crlf(
            "From: =?utf-8?B?5byg5LiJ?= <zhang@example.cn>\n"
            'To: =?iso-8859-1?q?Ren=E9?= <rene@example.fr>, "=?utf-8?q?J=C3=BCrgen?=" <j@x.de>\n'
            "\n"
        )
        p = parse_message(raw)
        self.assertEqual(p.envelope["from"], [addr("=?utf-8?B?5byg5LiJ?=", "zhang", "example.cn")])
        self.assertEqual(p.from_, [{"name": "张三", "address": "zhang@example.cn"}])
        self.assertEqual(
            p.to,
            [
                {"name": "René", "address": "rene@example.fr"},
                {"name": "Jürgen", "address": "j@x.de"},
            ],
        )

    def test_group_members_flattened_in_decoded_list(self) -> None:
        """Decoded lists hold only mailboxes, no group markers."""
        p = parse_message(crlf("To: List: a@x.org, b@y.org;\nCc: Nobody:;\n\n"))
        self.assertEqual([a["address"] for a in p.to], ["a@x.org", "b@y.org"])
        self.assertEqual(p.cc, [])
        self.assertEqual(p.envelope["cc"], [addr(None, "Nobody", None), GROUP_END])

    def test_route_and_missing_host(self) -> None:
        """Source routes go to adl; a mailbox without host gets a placeholder host."""
        self.assertEqual(
            parse_addresses("<@relay.example,@other.example:user@final.example>, localonly"),
            [
                addr(None, "user", "final.example", adl="@relay.example,@other.example"),
                addr(None, "localonly", MISSING_HOST),
            ],
        )

    def test_garbage_does_not_raise(self) -> None:
        """Unbalanced quotes, brackets and comments degrade."""
        for text in ('"unterminated <a@b', "(((", "<<>>", "a@b@c", ";;;", ":::", "[", "\\"):
            parse_addresses(text)
        self.assertEqual(parse_addresses("a@b (unclosed"), [addr("unclosed", "a", "b")])

    def test_quoted_local_part(self) -> None:
        """A quoted local part is unquoted in the ENVELOPE and re-quoted in the address."""
        p = parse_message(crlf('From: "john smith"@example.com\n\n'))
        self.assertEqual(p.envelope["from"][0]["mailbox"], "john smith")
        self.assertEqual(p.from_[0]["address"], '"john smith"@example.com')


class EnvelopeTests(unittest.TestCase):
    """The ENVELOPE fields."""

    def test_all_fields(self) -> None:
        """Every ENVELOPE field is reported raw and unfolded."""
        raw = crlf(
            "Date: Mon, 15 Jan 2024 10:00:00 +0800\nSubject: =?utf-8?q?hi?=\n there\n"
            "From: a@x.org\nSender: s@x.org\nReply-To: r@x.org\nTo: t@y.org\nCc: c@y.org\n"
            "Bcc: b@y.org\nIn-Reply-To: <p@x.org>\nMessage-ID: <m@x.org>\n\n"
        )
        env = parse_message(raw).envelope
        self.assertEqual(env["date"], "Mon, 15 Jan 2024 10:00:00 +0800")
        self.assertEqual(env["subject"], "=?utf-8?q?hi?= there")
        self.assertEqual(env["sender"], [addr(None, "s", "x.org")])
        self.assertEqual(env["reply_to"], [addr(None, "r", "x.org")])
        self.assertEqual(env["bcc"], [addr(None, "b", "y.org")])
        self.assertEqual((env["in_reply_to"], env["message_id"]), ("<p@x.org>", "<m@x.org>"))

    def test_sender_and_reply_to_default_to_from(self) -> None:
        """Absent Sender and Reply-To are the From addresses (RFC 3501)."""
        env = parse_message(crlf("From: A <a@x.org>\n\n")).envelope
        self.assertEqual(env["sender"], env["from"])
        self.assertEqual(env["reply_to"], env["from"])
        self.assertEqual((env["subject"], env["to"]), (None, []))

    def test_date_parsing(self) -> None:
        """Dates are timezone-aware; unparsable dates are None."""
        p = parse_message(crlf("Date: Mon, 15 Jan 2024 10:00:00 +0800\n\n"))
        self.assertEqual(p.date, datetime.datetime(2024, 1, 15, 2, 0, tzinfo=datetime.UTC))
        unzoned = parse_date("15 Jan 2024 10:00 -0000")
        assert unzoned is not None
        self.assertEqual(unzoned.tzinfo, datetime.UTC)
        for bad in ("yesterday", "", "Mon, 99 Foo 2024 99:99:99", "Mon, 1 Jan 99999 00:00 +0000"):
            self.assertIsNone(parse_date(bad))

    def test_message_id(self) -> None:
        """message_id is the first <...> of the header."""
        p = parse_message(crlf("Message-ID: junk <a@b> <c@d>\n\n"))
        self.assertEqual(p.message_id, "<a@b>")
        self.assertIsNone(parse_message(b"\r\n").message_id)
