"""SORT (RFC 5256): the sort criteria, the base subject, and the ordering itself.

``SORT (criteria) charset search-keys`` answers ``* SORT`` with the matching messages in
the order of the criteria: ARRIVAL (internal date), CC, DATE (the Date header as an
instant, else the internal date), FROM, SIZE, SUBJECT (the base subject, section 2.1), TO,
each optionally preceded by REVERSE.  CC/FROM/TO compare the local part (addr-mailbox) of
the field's first address.  Text keys compare with the i;ascii-casemap collation (ASCII
letters folded to upper case); messages that compare equal keep mailbox order (RFC 5256:
by sequence number).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from a3mail.imap.tokens import ImapSyntaxError, ParenList, Token
from a3mail.imap.wire import atom_upper
from a3mail.store.search import SortRecord

KEYS = frozenset({b"ARRIVAL", b"CC", b"DATE", b"FROM", b"SIZE", b"SUBJECT", b"TO"})
MAX_CRITERIA = 16


def parse_sort_criteria(token: Token) -> tuple[tuple[bytes, bool], ...]:
    """``(REVERSE DATE SUBJECT)`` -> ``((b"DATE", True), (b"SUBJECT", False))``;
    ImapSyntaxError (BAD) for anything else."""
    if not isinstance(token, ParenList) or not token.items:
        raise ImapSyntaxError("SORT takes a parenthesised list of criteria")
    if len(token.items) > MAX_CRITERIA:
        raise ImapSyntaxError("too many sort criteria")
    criteria: list[tuple[bytes, bool]] = []
    reverse = False
    for item in token.items:
        name = atom_upper(item)
        if name == b"REVERSE" and not reverse:
            reverse = True
        elif name in KEYS:
            criteria.append((name, reverse))
            reverse = False
        else:
            raise ImapSyntaxError("unknown sort criterion")
    if reverse:
        raise ImapSyntaxError("REVERSE must precede a sort key")
    return tuple(criteria)


def ascii_casemap(text: str) -> str:
    """The i;ascii-casemap form of *text*: ASCII letters upper-cased, nothing else."""
    return text.translate(_UPPER)


_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_SPACES = re.compile(r"\s+")
_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"^(?:(?P<refwd>(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:)|\s+)", re.IGNORECASE)
_LEADING_BLOB = re.compile(rf"^{_BLOB}")


def base_subject(subject: str) -> str:
    """The base subject of RFC 5256 section 2.1 (the decoded subject without ``Re:``,
    ``Fwd:``, ``[list]`` prefixes, ``(fwd)`` trailers and ``[fwd: ...]`` wrapping), in the
    i;ascii-casemap form used to compare it."""
    return subject_key(subject)[0]


def subject_key(subject: str) -> tuple[str, bool]:
    """The base subject, and whether the message is a reply or forward in RFC 5256's
    sense: the extraction removed a ``Re:``/``Fwd:`` leader, a ``(fwd)`` trailer or a
    ``[fwd: ...]`` wrapping (THREAD=REFERENCES uses both)."""
    text = _SPACES.sub(" ", subject)  # (1) whitespace runs become one space
    reply = False
    while True:
        trimmed = _TRAILER.sub("", text)  # (2) trailing "(fwd)" and spaces
        reply = reply or "(fwd)" in text[len(trimmed) :].lower()
        text = trimmed
        while True:
            before = text
            text, stripped = _strip_leaders(text)  # (3)
            reply = reply or stripped
            blob = _LEADING_BLOB.match(text)  # (4) a leading blob, unless it is all
            if blob and text[blob.end() :]:
                text = text[blob.end() :]
            if text == before:  # (5)
                break
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # (6)
            text = text[5:-1]
            reply = True
            continue
        return ascii_casemap(text.strip()), reply


def _strip_leaders(text: str) -> tuple[str, bool]:
    """*text* without its leading ``Re:``/``Fwd:`` leaders and spaces, and whether a
    leader was among them."""
    stripped = False
    while True:
        match = _LEADER.match(text)
        if match is None or not match.end():
            return text, stripped
        stripped = stripped or match.group("refwd") is not None
        text = text[match.end() :]


def _key(record: SortRecord, name: bytes) -> Any:
    if name == b"ARRIVAL":
        return record.internal_date
    if name == b"DATE":
        return record.sent_date or record.internal_date
    if name == b"SIZE":
        return record.size
    if name == b"SUBJECT":
        return base_subject(record.subject or "")
    field = {b"FROM": record.from_mailbox, b"TO": record.to_mailbox, b"CC": record.cc_mailbox}
    return ascii_casemap(field[name] or "")


def sort_records(
    records: Sequence[SortRecord], criteria: Sequence[tuple[bytes, bool]]
) -> list[int]:
    """The UIDs of *records* (in UID order) in the order *criteria* give."""
    ordered = sorted(records, key=lambda r: r.uid)
    # Stable sorts from the last criterion to the first: ties keep mailbox order.
    for name, reverse in reversed(criteria):
        ordered.sort(key=functools.partial(_key, name=name), reverse=reverse)
    return [r.uid for r in ordered]
