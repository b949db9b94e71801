"""The SEARCH criteria tree the store evaluates (built by :mod:`a3mail.imap.searchspec`).

Plain records with no SQL in them; :mod:`a3mail.store.search` turns a tree into one WHERE
clause.  a3mail keeps no ``\\Recent`` state, so RECENT/NEW parse to :class:`Nothing`.
"""

from __future__ import annotations

import datetime
from typing import TypeAlias

import attrs

#: ``None`` in a range stands for ``*`` (the last message / largest UID).
Range = tuple[int | None, int | None]


@attrs.frozen
class All:
    """Matches every message (``ALL``, ``OLD``)."""


@attrs.frozen
class Nothing:
    """Matches no message (``RECENT``, ``NEW``: a3mail keeps no \\Recent state)."""


@attrs.frozen
class FlagKey:
    """A system flag bit (1 Seen, 2 Answered, 4 Flagged, 8 Deleted, 16 Draft) set or not."""

    bit: int
    present: bool


@attrs.frozen
class KeywordKey:
    """A keyword set (``KEYWORD``) or not (``UNKEYWORD``); compared case-insensitively."""

    keyword: str
    present: bool


@attrs.frozen
class DateKey:
    """``field`` ``internal`` (BEFORE/ON/SINCE) or ``sent`` (SENT*), ``op`` ``before``/
    ``on``/``since``, compared by calendar date."""

    field: str
    op: str
    date: datetime.date


@attrs.frozen
class AgeKey:
    """WITHIN (RFC 5032): ``op`` ``younger`` (internal date within the last ``seconds``)
    or ``older`` (further back than that)."""

    op: str
    seconds: int


@attrs.frozen
class SizeKey:
    """``op`` ``larger`` or ``smaller`` than ``size`` octets."""

    op: str
    size: int


@attrs.frozen
class TextKey:
    """A case-insensitive substring match.  ``field``: ``from``, ``to``, ``cc``, ``bcc``,
    ``subject``, ``body``, ``text`` or ``header`` (with ``header`` = the field name,
    lower-cased)."""

    field: str
    needle: str
    header: str = ""


@attrs.frozen
class ModSeqKey:
    """``MODSEQ n``: messages whose modseq is at least ``modseq``."""

    modseq: int


@attrs.frozen
class SequenceKey:
    """A message sequence set, before :meth:`SearchQuery.resolve` turns it into a UidKey."""

    ranges: tuple[Range, ...]


@attrs.frozen
class SavedKey:
    """``$`` (SEARCHRES, RFC 5182): the messages the session's last ``SEARCH RETURN
    (SAVE)`` found.  The session turns it into a UidKey; the store never sees it."""


@attrs.frozen
class UidKey:
    """A UID set.  ``None`` in a range is ``*`` (the largest UID in the mailbox)."""

    ranges: tuple[Range, ...]


@attrs.frozen
class Not:
    """Negation."""

    key: Key


@attrs.frozen
class Or:
    """Either key."""

    left: Key
    right: Key


@attrs.frozen
class And:
    """Every key (a parenthesised list, or the implicit AND of the top level)."""

    keys: tuple[Key, ...]


Key: TypeAlias = (
    All
    | Nothing
    | FlagKey
    | KeywordKey
    | DateKey
    | AgeKey
    | SizeKey
    | TextKey
    | ModSeqKey
    | SequenceKey
    | SavedKey
    | UidKey
    | Not
    | Or
    | And
)
