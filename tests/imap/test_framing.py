"""The lexer and the command framing, without a session."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.imap import framing
from a3mail.imap.lexer import tokenize
from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String
from a3mail.imap.wire import (
    BadMailboxName,
    decode_mailbox,
    encode_mailbox,
    format_sequence,
    parse_sequence_set,
    resolve_sequence,
    resolve_uids,
)


class LexerTests(unittest.TestCase):
    def test_atoms_strings_lists(self):
        self.assertEqual(
            tokenize(b'1:* (FLAGS "a \\"b\\"" NIL)'),
            [
                Atom(b"1:*"),
                ParenList((Atom(b"FLAGS"), String(b'a "b"'), Atom(b"NIL"))),
            ],
        )

    def test_literal_inline(self):
        self.assertEqual(
            tokenize(b"INBOX {5}\r\nab\r\nc x"),
            [Atom(b"INBOX"), String(b"ab\r\nc", literal=True), Atom(b"x")],
        )
        self.assertEqual(tokenize(b"{3+}\r\nabc"), [String(b"abc", literal=True)])

    def test_bracketed_fetch_attribute_is_one_atom(self):
        self.assertEqual(
            tokenize(b"(UID BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)"),
            [ParenList((Atom(b"UID"), Atom(b"BODY.PEEK[HEADER.FIELDS (From To)]<0.100>")))],
        )

    def test_syntax_errors(self):
        for bad in (b"(a b", b"a)", b'"open', b'"bad \\x escape"', b"{5}\r\nab", b"[a"):
            with self.assertRaises(ImapSyntaxError, msg=bad):
                tokenize(bad)

    def test_deep_nesting_refused(self):
        with self.assertRaises(ImapSyntaxError):
            tokenize(b"(" * 100 + b")" * 100)


def collect(reader: framing.CommandReader, data: bytes) -> tuple[list, list[bytes]]:
    sent: list[bytes] = []
    reader.feed(data)
    out = []
    while True:
        item = reader.next_command(lambda: sent.append(b"+"), lambda: None)
        if item is None:
            return out, sent
        out.append(item)


class FramingTests(unittest.TestCase):
    def test_pipelined_commands(self):
        reader = framing.CommandReader(framing.Limits())
        commands, _ = collect(reader, b"a NOOP\r\nb uid fetch 1 FLAGS\r\nc LOG")
        self.assertEqual(
            [(c.tag, c.name) for c in commands], [(b"a", b"NOOP"), (b"b", b"UID FETCH")]
        )
        self.assertEqual(commands[1].args, b"1 FLAGS")

    def test_synchronizing_literal_asks_for_continuation(self):
        reader = framing.CommandReader(framing.Limits())
        commands, sent = collect(reader, b"a LOGIN {5}\r\n")
        self.assertEqual((commands, sent), ([], [b"+"]))
        commands, sent = collect(reader, b"alice pw\r\n")
        self.assertEqual(commands[0].args, b"{5}\r\nalice pw")

    def test_literal_plus_needs_no_continuation(self):
        reader = framing.CommandReader(framing.Limits())
        commands, sent = collect(reader, b"a LOGIN {5+}\r\nalice pw\r\n")
        self.assertEqual(sent, [])
        self.assertEqual(commands[0].args, b"{5}\r\nalice pw")

    def test_huge_literal_refused_before_reading(self):
        reader = framing.CommandReader(framing.Limits())
        commands, sent = collect(reader, b"a APPEND INBOX {4294967296}\r\nb NOOP\r\n")
        self.assertEqual(sent, [])
        self.assertEqual(commands[0], framing.Refusal(b"a", b"NO [TOOBIG] Literal too large"))
        self.assertEqual(commands[1].name, b"NOOP")

    def test_huge_nonsynchronizing_literal_is_fatal(self):
        reader = framing.CommandReader(framing.Limits())
        commands, _ = collect(reader, b"a APPEND INBOX {4294967296+}\r\n")
        self.assertTrue(commands[0].fatal)

    def test_long_line_refused_then_next_command(self):
        reader = framing.CommandReader(framing.Limits(max_line=100))
        commands, _ = collect(reader, b"a NOOP " + b"x" * 300 + b"\r\nb NOOP\r\n")
        self.assertEqual(commands[0], framing.Refusal(b"*", b"BAD Command line too long"))
        self.assertEqual(commands[1].tag, b"b")

    def test_long_line_in_pieces(self):
        reader = framing.CommandReader(framing.Limits(max_line=100))
        commands, _ = collect(reader, b"a NOOP " + b"x" * 300)
        self.assertIsInstance(commands[0], framing.Refusal)
        commands, _ = collect(reader, b"y" * 50 + b"\r\nb NOOP\r\n")
        self.assertEqual([c.tag for c in commands], [b"b"])

    def test_append_literal_spooled(self):
        written: list[bytes] = []

        class Writer:
            def write(self, data: bytes) -> None:
                written.append(data)

            def abort(self) -> None:
                pass

        reader = framing.CommandReader(framing.Limits(spool_threshold=10))
        reader.feed(b"a APPEND INBOX {20}\r\n" + b"0123456789")
        self.assertIsNone(reader.next_command(lambda: None, Writer))
        reader.feed(b"0123456789\r\n")
        command = reader.next_command(lambda: None, Writer)
        self.assertEqual(command.args, b"INBOX {0}\r\n")
        self.assertEqual(b"".join(written), b"01234567890123456789")
        self.assertEqual([(s.index, s.size) for s in command.spooled], [(0, 20)])
        self.assertLess(len(reader.buffer), 10)

    def test_missing_tag(self):
        reader = framing.CommandReader(framing.Limits())
        commands, _ = collect(reader, b"\r\n")
        self.assertEqual(commands[0].tag, b"*")


class WireTests(unittest.TestCase):
    def test_sequence_sets(self):
        self.assertEqual(resolve_sequence(parse_sequence_set(Atom(b"2:*,1")), 4), [1, 2, 3, 4])
        self.assertEqual(resolve_sequence(parse_sequence_set(Atom(b"*:3")), 4), [3, 4])
        with self.assertRaises(ImapSyntaxError):
            resolve_sequence(parse_sequence_set(Atom(b"5")), 4)
        with self.assertRaises(ImapSyntaxError):
            parse_sequence_set(Atom(b"0:1"))
        self.assertEqual(resolve_uids(parse_sequence_set(Atom(b"7:*")), [2, 5, 6]), [6])
        self.assertEqual(format_sequence([1, 2, 3, 5, 7, 8]), b"1:3,5,7:8")

    def test_mailbox_names(self):
        self.assertEqual(decode_mailbox(Atom(b"inbox/Sub")), "INBOX/Sub")
        self.assertEqual(decode_mailbox(String(b"Entw&APw-rfe")), "Entwürfe")
        self.assertEqual(encode_mailbox("Entwürfe"), b'"Entw&APw-rfe"')
        for bad in (
            b"../x",
            b"a/../b",
            b"#users/other/INBOX",
            b"other@domain/INBOX",
            b"a\x00b",
            b"a\r\nb",
            b"/abs",
            b"~bob",
        ):
            with self.assertRaises(BadMailboxName, msg=bad):
                decode_mailbox(String(bad))
