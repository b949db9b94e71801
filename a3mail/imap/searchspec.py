"""SEARCH criteria (RFC 3501 6.4.4, plus MODSEQ of RFC 7162) parsed from tokens into a tree.

:func:`parse_search` gives a :class:`SearchQuery`; the session calls
:meth:`SearchQuery.resolve` with its sequence-number -> UID list, then hands the query to
``store.search.search`` which evaluates the whole tree in one SQL statement.

a3mail keeps no ``\\Recent`` state: ``RECENT`` matches nothing, ``NEW`` (= RECENT UNSEEN)
matches nothing and ``OLD`` (= NOT RECENT) matches everything.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import attrs

from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String, Token
from a3mail.imap.wire import number_ranges
from a3mail.store.searchkeys import (
    AgeKey,
    All,
    And,
    DateKey,
    FlagKey,
    Key,
    KeywordKey,
    ModSeqKey,
    Not,
    Nothing,
    Or,
    Range,
    SavedKey,
    SequenceKey,
    SizeKey,
    TextKey,
    UidKey,
)

__all__ = [
    "CHARSETS",
    "AgeKey",
    "All",
    "And",
    "BadCharset",
    "DateKey",
    "FlagKey",
    "Key",
    "KeywordKey",
    "ModSeqKey",
    "Not",
    "Nothing",
    "Or",
    "SavedKey",
    "SearchQuery",
    "SequenceKey",
    "SizeKey",
    "TextKey",
    "UidKey",
    "parse_search",
    "parse_sequence_set",
    "seq_ranges_to_uids",
]

#: Charsets accepted in ``CHARSET`` (the BADCHARSET response lists them).
CHARSETS = ("UTF-8", "US-ASCII")
#: At most this many keys (nodes) in one query.
MAX_KEYS = 1000
#: At most this deep nesting of NOT / OR / parentheses.
MAX_DEPTH = 64
#: At most this many ranges in one sequence set.
MAX_RANGES = 100_000
#: Search strings are cut to this many characters.
MAX_NEEDLE = 10_000

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_DATE = re.compile(r"^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$")
_SET_ITEM = re.compile(rb"^(\*|[1-9][0-9]{0,9})(?::(\*|[1-9][0-9]{0,9}))?$")
_MAX_UID = 4294967295


class BadCharset(ImapSyntaxError):
    """CHARSET names a charset we do not support: answer ``NO [BADCHARSET (UTF-8 US-ASCII)]``
    (not BAD)."""


@attrs.frozen
class SearchQuery:
    """A parsed SEARCH: ``root`` (an :class:`And` of the keys), the ``charset`` given (upper
    case, ``None`` when absent)."""

    root: Key
    charset: str | None = None

    @property
    def uses_modseq(self) -> bool:
        """Whether a MODSEQ key appears (RFC 7162: answer ``* SEARCH ... (MODSEQ n)``)."""
        return any(isinstance(k, ModSeqKey) for k in _keys(self.root))

    @property
    def resolved(self) -> bool:
        """True when no sequence-number key is left (what the store requires)."""
        return not any(isinstance(k, SequenceKey | SavedKey) for k in _keys(self.root))

    def resolve(self, uids: Sequence[int], saved: Sequence[int] = ()) -> SearchQuery:
        """Replace sequence-set keys by UID sets: sequence number n is ``uids[n-1]`` (the
        session's view, ascending), ``*`` is the last one.  Numbers past the end match
        nothing; with an empty mailbox every sequence set matches nothing.  ``*`` in UID sets
        becomes the last UID of *uids* too (left as is when *uids* is empty: the store then
        uses the largest UID in the mailbox).  ``$`` becomes the UIDs in *saved* (the
        session's saved search result, ascending)."""
        return attrs.evolve(self, root=_resolve(self.root, uids, saved))


def _keys(key: Key) -> list[Key]:
    out: list[Key] = []
    stack = [key]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, Not):
            stack.append(node.key)
        elif isinstance(node, Or):
            stack.extend((node.left, node.right))
        elif isinstance(node, And):
            stack.extend(node.keys)
    return out


def _resolve(key: Key, uids: Sequence[int], saved: Sequence[int] = ()) -> Key:
    if isinstance(key, SavedKey):
        return UidKey(tuple(number_ranges(saved)))
    if isinstance(key, SequenceKey):
        return UidKey(seq_ranges_to_uids(key.ranges, uids))
    if isinstance(key, UidKey) and uids:
        top = uids[-1]
        return UidKey(
            tuple((top if a is None else a, top if b is None else b) for a, b in key.ranges)
        )
    if isinstance(key, Not):
        return Not(_resolve(key.key, uids, saved))
    if isinstance(key, Or):
        return Or(_resolve(key.left, uids, saved), _resolve(key.right, uids, saved))
    if isinstance(key, And):
        return And(tuple(_resolve(k, uids, saved) for k in key.keys))
    return key


def seq_ranges_to_uids(ranges: Sequence[Range], uids: Sequence[int]) -> tuple[Range, ...]:
    """Sequence ranges -> UID ranges over the session's ascending UID list."""
    count = len(uids)
    out: list[Range] = []
    for first, last in ranges:
        lo = count if first is None else first
        hi = count if last is None else last
        lo, hi = min(lo, hi), max(lo, hi)
        hi = min(hi, count)
        if lo > hi or lo < 1:
            continue
        out.append((uids[lo - 1], uids[hi - 1]))
    return tuple(out)


# -- parsing -------------------------------------------------------------------------------


def parse_search(tokens: Sequence[Token]) -> SearchQuery:
    """Parse the arguments of SEARCH / UID SEARCH (after the command name).

    An optional ``CHARSET name`` comes first: UTF-8 and US-ASCII are accepted (strings are
    decoded as UTF-8 either way, which US-ASCII is a subset of), others raise
    :class:`BadCharset`.  Strings may be quoted strings, literals or atoms.  Raises
    :class:`~a3mail.imap.tokens.ImapSyntaxError` (safe to send in BAD) for bad syntax.
    """
    parser = _Parser(tokens)
    charset = None
    if parser.peek_word() == "CHARSET":
        parser.pos += 1
        charset = parser.string("charset").upper()
        if charset not in CHARSETS:
            raise BadCharset("unsupported charset")
    keys = []
    while not parser.done():
        keys.append(parser.key(0))
    if not keys:
        raise ImapSyntaxError("missing search criteria")
    return SearchQuery(And(tuple(keys)), charset)


_FLAG_KEYS = {
    "ANSWERED": (2, True),
    "DELETED": (8, True),
    "DRAFT": (16, True),
    "FLAGGED": (4, True),
    "SEEN": (1, True),
    "UNANSWERED": (2, False),
    "UNDELETED": (8, False),
    "UNDRAFT": (16, False),
    "UNFLAGGED": (4, False),
    "UNSEEN": (1, False),
}
_TEXT_KEYS = {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"}
_DATE_KEYS = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
}
#: YOUNGER/OLDER intervals are capped here (about 3,000 years: older than any message).
MAX_INTERVAL = 10**11
_SYSTEM_FLAGS = {"\\seen": 1, "\\answered": 2, "\\flagged": 4, "\\deleted": 8, "\\draft": 16}


class _Parser:
    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.count = 0

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self, what: str) -> Token:
        if self.done():
            raise ImapSyntaxError(f"missing {what}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def peek_word(self) -> str | None:
        if self.done():
            return None
        token = self.tokens[self.pos]
        return token.value.decode("ascii", "replace").upper() if isinstance(token, Atom) else None

    def string(self, what: str) -> str:
        token = self.next(what)
        if not isinstance(token, Atom | String):
            raise ImapSyntaxError(f"bad {what}")
        return token.value.decode("utf-8", "replace")[:MAX_NEEDLE]

    def number(self, what: str) -> int:
        token = self.next(what)
        if not isinstance(token, Atom) or not token.value.isdigit() or len(token.value) > 20:
            raise ImapSyntaxError(f"bad {what}")
        return int(token.value)

    def date(self, what: str) -> datetime.date:
        m = _DATE.match(self.string(what))
        month = _MONTHS.get(m.group(2).lower()) if m else None
        if m is None or month is None:
            raise ImapSyntaxError(f"bad {what}")
        try:
            return datetime.date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise ImapSyntaxError(f"bad {what}") from None

    def key(self, depth: int) -> Key:
        if depth > MAX_DEPTH:
            raise ImapSyntaxError("search criteria nested too deeply")
        self.count += 1
        if self.count > MAX_KEYS:
            raise ImapSyntaxError("too many search criteria")
        token = self.next("search key")
        if isinstance(token, ParenList):
            if not token.items:
                raise ImapSyntaxError("empty parenthesised search criteria")
            inner = _Parser(token.items)
            inner.count = self.count
            keys = []
            while not inner.done():
                keys.append(inner.key(depth + 1))
            self.count = inner.count
            return And(tuple(keys))
        if not isinstance(token, Atom):
            raise ImapSyntaxError("bad search key")
        word = token.value.decode("ascii", "replace").upper()
        return self.keyword(word, token.value, depth)

    def keyword(self, word: str, raw: bytes, depth: int) -> Key:
        if word in ("ALL", "OLD"):
            return All()
        if word in ("RECENT", "NEW"):
            return Nothing()
        if word in _FLAG_KEYS:
            bit, present = _FLAG_KEYS[word]
            return FlagKey(bit, present)
        if word in ("KEYWORD", "UNKEYWORD"):
            flag = self.string("keyword")
            system = _SYSTEM_FLAGS.get(flag.lower())
            if system is not None:
                return FlagKey(system, word == "KEYWORD")
            return KeywordKey(flag, word == "KEYWORD")
        if word in _TEXT_KEYS:
            return TextKey(word.lower(), self.string("search string"))
        if word == "HEADER":
            name = self.string("header field name").strip().lower()
            if not name or ":" in name:
                raise ImapSyntaxError("bad header field name")
            return TextKey("header", self.string("search string"), name)
        if word in _DATE_KEYS:
            field, op = _DATE_KEYS[word]
            return DateKey(field, op, self.date("date"))
        if word in ("LARGER", "SMALLER"):
            return SizeKey(word.lower(), self.number("size"))
        if word in ("YOUNGER", "OLDER"):  # WITHIN (RFC 5032)
            return AgeKey(word.lower(), min(self.number("interval"), MAX_INTERVAL))
        if word == "NOT":
            return Not(self.key(depth + 1))
        if word == "OR":
            return Or(self.key(depth + 1), self.key(depth + 1))
        if word == "UID":
            token = self.next("UID set")
            if not isinstance(token, Atom):
                raise ImapSyntaxError("bad UID set")
            if token.value == b"$":
                return SavedKey()
            return UidKey(parse_sequence_set(token.value))
        if word == "MODSEQ":
            return self.modseq()
        if raw == b"$":
            return SavedKey()
        if raw[:1].isdigit() or raw[:1] == b"*":
            return SequenceKey(parse_sequence_set(raw))
        raise ImapSyntaxError("unknown search key")

    def modseq(self) -> Key:
        """``MODSEQ [entry-name entry-type] n`` (the entry is accepted and ignored)."""
        token = self.next("modseq")
        if isinstance(token, String) or (isinstance(token, Atom) and not token.value.isdigit()):
            kind = self.string("entry type").lower()
            if kind not in ("all", "priv", "shared"):
                raise ImapSyntaxError("bad MODSEQ entry type")
            token = self.next("modseq")
        if not isinstance(token, Atom) or not token.value.isdigit() or len(token.value) > 20:
            raise ImapSyntaxError("bad modseq")
        return ModSeqKey(int(token.value))


def parse_sequence_set(value: bytes) -> tuple[Range, ...]:
    """``1:5,7,9:*`` -> ranges (``None`` for ``*``); raises ImapSyntaxError."""
    pieces = value.split(b",")
    if len(pieces) > MAX_RANGES:
        raise ImapSyntaxError("sequence set too long")
    ranges: list[Range] = []
    for piece in pieces:
        m = _SET_ITEM.match(piece)
        if m is None:
            raise ImapSyntaxError("bad sequence set")
        first = None if m.group(1) == b"*" else int(m.group(1))
        last = first if m.group(2) is None else (None if m.group(2) == b"*" else int(m.group(2)))
        if (first or 0) > _MAX_UID or (last or 0) > _MAX_UID:
            raise ImapSyntaxError("bad sequence set")
        ranges.append((first, last))
    return tuple(ranges)
