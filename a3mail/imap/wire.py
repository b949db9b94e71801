"""Small IMAP wire helpers of the protocol front: strings, flag lists, mailbox names,
sequence sets, argument checks."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Sequence

import twisted.mail.imap4  # noqa: F401 - registers the "imap4-utf-7" codec

from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String, Token
from a3mail.store.names import INBOX
from a3mail.store.records import flag_names

_SAFE_QUOTED = re.compile(rb"^[\x20-\x7e]*$")
_NUMBER = re.compile(rb"^[0-9]{1,10}$")
MAX_NUMBER = 4294967295
_SYSTEM = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"}


def astring(value: bytes) -> bytes:
    """A quoted string, or a literal when it cannot be quoted."""
    if _SAFE_QUOTED.match(value) and len(value) < 1000:
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n%s" % (len(value), value)


def flag_list(names: Iterable[str]) -> bytes:
    """``(\\Seen $Label)``."""
    return b"(" + b" ".join(n.encode("utf-8", "replace") for n in names) + b")"


# -- mailbox names ----------------------------------------------------------------------


class BadMailboxName(Exception):
    """A mailbox name the client may not use (the text is safe to send)."""


def decode_mailbox(token: Token) -> str:
    """The store name of a client mailbox argument (modified UTF-7 decoded, checked).

    Names are always relative to the logged-in account: other namespaces (``#...``,
    ``~user``), other accounts (``user@domain/...``), ``.``/``..`` parts and control
    characters are refused.
    """
    raw = token_bytes(token)
    if not raw:
        raise BadMailboxName("Empty mailbox name")
    try:
        name = raw.decode("imap4-utf-7") if raw.isascii() else raw.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        raise BadMailboxName("Invalid mailbox name encoding") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadMailboxName("Invalid character in mailbox name")
    if name.startswith(("#", "~", "/")) or "@" in name:
        raise BadMailboxName("No such namespace")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadMailboxName("Invalid mailbox name")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return "/".join(parts)


def encode_mailbox(name: str) -> bytes:
    """A store name as a quoted (or literal) modified-UTF-7 string."""
    return astring(name.encode("imap4-utf-7"))


# -- arguments --------------------------------------------------------------------------


def token_bytes(token: Token) -> bytes:
    """The bytes of an atom or string argument."""
    if isinstance(token, ParenList):
        raise ImapSyntaxError("Expected a string, got a list")
    return token.value


def atom_upper(token: Token) -> bytes:
    """An atom, upper-cased; :class:`ImapSyntaxError` for anything else."""
    if not isinstance(token, Atom):
        raise ImapSyntaxError("Expected an atom")
    return token.value.upper()


def number(token: Token) -> int:
    """An unsigned number (up to 63 bits, for modseqs)."""
    value = token.value if isinstance(token, Atom) else b""
    if not value.isdigit() or len(value) > 19 or int(value) >= 2**63:
        raise ImapSyntaxError("Expected a number")
    return int(value)


def flags_argument(tokens: Sequence[Token]) -> list[str]:
    """Flags given as one list or as bare atoms."""
    if len(tokens) == 1 and isinstance(tokens[0], ParenList):
        tokens = tokens[0].items
    flags: list[str] = []
    for token in tokens:
        if not isinstance(token, Atom):
            raise ImapSyntaxError("Invalid flag")
        text = token.value.decode("ascii", "replace")
        if text.startswith("\\") and text.lower() not in _SYSTEM:
            raise ImapSyntaxError("Invalid system flag")
        if any(c in text[1:] for c in '(){%*"]\\') or not text.isascii():
            raise ImapSyntaxError("Invalid flag")
        flags.append(text)
    return flags


def is_string(token: Token) -> bool:
    """True for an atom or a string (an astring)."""
    return isinstance(token, Atom | String)


# -- sequence sets ----------------------------------------------------------------------

Ranges = list[tuple[int | None, int | None]]  # None: "*"


def parse_sequence_set(token: Token) -> Ranges:
    """``1:3,5,7:*`` as ranges; ``*`` as None.  (``$`` is resolved by the session.)"""
    if not isinstance(token, Atom):
        raise ImapSyntaxError("Invalid sequence set")
    ranges: Ranges = []
    for part in token.value.split(b","):
        low, colon, high = part.partition(b":")
        first = _seq_number(low)
        ranges.append((first, _seq_number(high) if colon else first))
    return ranges


def _seq_number(value: bytes) -> int | None:
    if value == b"*":
        return None
    if not _NUMBER.match(value) or not 0 < int(value) <= MAX_NUMBER:
        raise ImapSyntaxError("Invalid sequence set")
    return int(value)


def span(low: int | None, high: int | None, star: int) -> tuple[int, int]:
    """One range of a set, ``*`` (None) standing for *star*, as (smallest, largest)."""
    a, b = (star if low is None else low), (star if high is None else high)
    return min(a, b), max(a, b)


def in_ranges(number: int, ranges: Ranges, star: int) -> bool:
    """Whether a set (``*`` standing for *star*) contains *number*."""
    for low, high in ranges:
        a, b = span(low, high, star)
        if a <= number <= b:
            return True
    return False


def resolve_sequence(ranges: Ranges, count: int) -> list[int]:
    """Message sequence numbers (1-based, ascending) a set names in a mailbox of *count*.

    Raises :class:`ImapSyntaxError` when a number is beyond *count* (RFC 3501: BAD).
    """
    if count == 0:
        raise ImapSyntaxError("No messages in the mailbox")
    spans = []
    for low, high in ranges:
        a, b = span(low, high, count)
        if b > count:
            raise ImapSyntaxError("Message sequence number out of range")
        spans.append((a, b))
    if len(spans) == 1:  # "1:*" and the like: no set of every number
        return list(range(spans[0][0], spans[0][1] + 1))
    chosen: set[int] = set()
    for a, b in spans:
        chosen.update(range(a, b + 1))
    return sorted(chosen)


def resolve_uids(ranges: Ranges, uids: Sequence[int]) -> list[int]:
    """The UIDs of the mailbox (ascending *uids*) a UID set names; missing ones are skipped."""
    if not uids:
        return []
    last = uids[-1]
    slices = []
    for low, high in ranges:
        a, b = span(low, high, last)
        slices.append(uids[bisect.bisect_left(uids, a) : bisect.bisect_right(uids, b)])
    if len(slices) == 1:  # one range: already ascending and unique
        return list(slices[0])
    chosen: set[int] = set()
    for piece in slices:
        chosen.update(piece)
    return sorted(chosen)


def number_ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending numbers as ranges, consecutive ones merged: 1 2 3 7 -> (1, 3), (7, 7)."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def format_sequence(numbers: Iterable[int]) -> bytes:
    """Compact ``1:3,5`` form of ascending numbers."""
    return b",".join(
        b"%d" % first if first == last else b"%d:%d" % (first, last)
        for first, last in number_ranges(numbers)
    )


def is_saved_result(token: Token) -> bool:
    """Whether a sequence-set argument is ``$``, the saved search result (RFC 5182)."""
    return isinstance(token, Atom) and token.value == b"$"


@functools.cache
def _system_flags_text(bits: int) -> bytes:
    return " ".join(flag_names(bits)).encode("ascii")


def flags_text(bits: int, keywords: Sequence[str]) -> bytes:
    """The inside of a FLAGS list (system flag names cached per bit pattern)."""
    text = _system_flags_text(bits)
    if keywords:
        words = " ".join(keywords).encode("utf-8", "replace")
        text = text + b" " + words if text else words
    return text
