"""Lexing one IMAP command's arguments into :mod:`a3mail.imap.tokens`.

The input is the argument bytes of one complete command (after the tag and the command
name), with each literal inline as ``{n}\\r\\n`` (or ``{n+}\\r\\n``) followed by its *n*
bytes, exactly as the framing in :mod:`a3mail.imap.framing` assembles them.
"""

from __future__ import annotations

from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String, Token

_SPECIALS = frozenset(b' ()"{\r\n\x00')
MAX_DEPTH = 32


class _Lexer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def error(self, message: str) -> ImapSyntaxError:
        return ImapSyntaxError(message)

    def tokens(self, closing: bool, depth: int) -> list[Token]:
        """Tokens up to the end (or, with *closing*, up to the matching ``)``)."""
        data = self.data
        out: list[Token] = []
        while True:
            while self.pos < len(data) and data[self.pos] == 0x20:
                self.pos += 1
            if self.pos >= len(data):
                if closing:
                    raise self.error("unbalanced parentheses")
                return out
            char = data[self.pos]
            if char == 0x29:  # ')'
                if not closing:
                    raise self.error("unbalanced parentheses")
                self.pos += 1
                return out
            if char == 0x28:  # '('
                if depth >= MAX_DEPTH:
                    raise self.error("parentheses nested too deeply")
                self.pos += 1
                out.append(ParenList(tuple(self.tokens(True, depth + 1))))
            elif char == 0x22:  # '"'
                out.append(self.quoted())
            elif char == 0x7B:  # '{'
                out.append(self.literal())
            else:
                out.append(self.atom())
            if self.pos < len(data) and data[self.pos] not in b" )":
                raise self.error("missing space between arguments")

    def quoted(self) -> String:
        data = self.data
        self.pos += 1
        value = bytearray()
        while True:
            if self.pos >= len(data):
                raise self.error("unterminated quoted string")
            char = data[self.pos]
            if char == 0x5C:  # backslash
                if self.pos + 1 >= len(data) or data[self.pos + 1] not in b'\\"':
                    raise self.error("bad escape in quoted string")
                value.append(data[self.pos + 1])
                self.pos += 2
            elif char == 0x22:
                self.pos += 1
                return String(bytes(value))
            elif char in (0x0D, 0x0A, 0x00):
                raise self.error("bad character in quoted string")
            else:
                value.append(char)
                self.pos += 1

    def literal(self) -> String:
        data = self.data
        end = data.find(b"}\r\n", self.pos)
        if end < 0:
            raise self.error("bad literal")
        count = data[self.pos + 1 : end]
        if count.endswith(b"+"):
            count = count[:-1]
        if not count.isdigit() or len(count) > 10:
            raise self.error("bad literal")
        size = int(count)
        start = end + 3
        if start + size > len(data):
            raise self.error("literal shorter than announced")
        self.pos = start + size
        return String(data[start : self.pos], literal=True)

    def atom(self) -> Atom:
        data = self.data
        start = self.pos
        while self.pos < len(data):
            char = data[self.pos]
            if char == 0x5B:  # '[' runs to its matching ']'
                self.pos = self._bracket_end(self.pos)
                if self.pos < len(data) and data[self.pos] == 0x3C:  # '<' partial
                    close = data.find(b">", self.pos)
                    if close < 0:
                        raise self.error("unterminated partial")
                    self.pos = close + 1
                continue
            if char in _SPECIALS or char < 0x20 or char == 0x7F:
                break
            self.pos += 1
        if self.pos == start:
            raise self.error("unexpected character")
        return Atom(data[start : self.pos])

    def _bracket_end(self, pos: int) -> int:
        data = self.data
        depth = 0
        while pos < len(data):
            char = data[pos]
            if char == 0x5B:
                depth += 1
            elif char == 0x5D:
                depth -= 1
                if depth == 0:
                    return pos + 1
            elif char in (0x0D, 0x0A, 0x00):
                break
            elif char == 0x22:  # a quoted string inside brackets (HEADER.FIELDS ("x"))
                close = data.find(b'"', pos + 1)
                if close < 0:
                    break
                pos = close
            pos += 1
        raise self.error("unbalanced brackets")


def tokenize(data: bytes) -> list[Token]:
    """The tokens of one command's arguments; :class:`ImapSyntaxError` if they do not lex."""
    return _Lexer(data).tokens(False, 0)
