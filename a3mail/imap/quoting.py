"""IMAP string forms for server responses (RFC 3501 4.3, 4.5): quoted, literal, NIL."""

from __future__ import annotations

import re

_QUOTABLE = re.compile(rb"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")

#: Strings longer than this are always sent as literals.
MAX_QUOTED = 1024

NIL = b"NIL"


def literal(data: bytes) -> bytes:
    """``{n}\\r\\n`` followed by *data*."""
    return b"{%d}\r\n" % len(data) + data


def string(value: str | bytes) -> bytes:
    """A quoted string when *value* is short, 7-bit, printable and has no ``"`` or ``\\``;
    otherwise a literal.  NUL octets (never allowed in an IMAP string) are dropped, text is
    sent as UTF-8."""
    data = value.encode("utf-8", "replace") if isinstance(value, str) else value
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    if len(data) <= MAX_QUOTED and _QUOTABLE.match(data):
        return b'"' + data + b'"'
    return literal(data)


def nstring(value: str | bytes | None) -> bytes:
    """``NIL`` for None, else :func:`string`."""
    return NIL if value is None else string(value)


def number(value: int) -> bytes:
    """A non-negative decimal number."""
    return b"%d" % max(0, int(value))
