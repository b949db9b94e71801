"""QRESYNC (RFC 7162 section 3.2): quick resynchronisation of a mailbox a client has seen.

A session that sent ``ENABLE QRESYNC`` (which also enables CONDSTORE) may:

- give SELECT/EXAMINE a ``(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))``
  parameter: when the UIDVALIDITY still matches, the server adds, after the usual responses,
  ``* VANISHED (EARLIER) uids`` for the known messages expunged since *modseq* (from the
  store's ``expunged`` table) and a ``FETCH (FLAGS UID MODSEQ)`` for each message changed
  since it;
- give UID FETCH the ``VANISHED`` modifier next to ``CHANGEDSINCE``: the expunged UIDs of
  the set come first as ``* VANISHED (EARLIER)``;
- and from then on it is told of expunges with ``* VANISHED uids`` instead of
  ``* n EXPUNGE``.

The optional sequence-match data is checked for syntax and otherwise not needed: the
``expunged`` table keeps every expunge, so the answer is exact without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from a3mail.imap.tokens import ImapSyntaxError, ParenList, Token
from a3mail.imap.wire import (
    Ranges,
    atom_upper,
    format_sequence,
    in_ranges,
    number,
    parse_sequence_set,
)


@attrs.frozen
class QresyncParams:
    """The QRESYNC parameter of SELECT/EXAMINE."""

    uidvalidity: int
    modseq: int
    known_uids: Ranges | None = None


@attrs.frozen
class SelectParams:
    """The parameters of SELECT/EXAMINE: ``(CONDSTORE)`` and/or ``(QRESYNC (...))``."""

    condstore: bool = False
    qresync: QresyncParams | None = None


def parse_select_params(token: Token, qresync_enabled: bool) -> SelectParams:
    """Parse the parenthesised SELECT/EXAMINE parameters; ImapSyntaxError (BAD) for anything
    unknown, and for QRESYNC when the session has not enabled it (RFC 7162 3.2.5)."""
    if not isinstance(token, ParenList) or not token.items:
        raise ImapSyntaxError("Unknown SELECT parameter")
    items = list(token.items)
    condstore = False
    qresync: QresyncParams | None = None
    while items:
        name = atom_upper(items.pop(0))
        if name == b"CONDSTORE" and not condstore:
            condstore = True
        elif name == b"QRESYNC" and qresync is None:
            if not qresync_enabled:
                raise ImapSyntaxError("QRESYNC must be enabled first")
            values = items.pop(0) if items else None
            if not isinstance(values, ParenList):
                raise ImapSyntaxError("QRESYNC takes a parenthesised list")
            qresync = _qresync(values)
        else:
            raise ImapSyntaxError("Unknown SELECT parameter")
    return SelectParams(condstore, qresync)


def _qresync(token: ParenList) -> QresyncParams:
    values = list(token.items)
    if not 2 <= len(values) <= 4:
        raise ImapSyntaxError("QRESYNC takes a UIDVALIDITY, a MODSEQ and optional UID sets")
    uidvalidity, modseq = number(values[0]), number(values[1])
    if uidvalidity == 0:
        raise ImapSyntaxError("Invalid UIDVALIDITY")
    rest = values[2:]
    known: Ranges | None = None
    if rest and not isinstance(rest[0], ParenList):
        known = parse_sequence_set(rest.pop(0))
    if rest:
        match = rest.pop(0)
        if rest or not isinstance(match, ParenList) or len(match.items) != 2:
            raise ImapSyntaxError("Invalid QRESYNC sequence match data")
        for part in match.items:
            parse_sequence_set(part)
    return QresyncParams(uidvalidity, modseq, known)


def parse_fetch_modifiers(token: Token) -> tuple[int | None, bool]:
    """``(CHANGEDSINCE n [VANISHED])`` after FETCH items: the modseq and whether VANISHED
    was asked.  ImapSyntaxError for anything else, and for VANISHED without CHANGEDSINCE."""
    if not isinstance(token, ParenList) or not token.items:
        raise ImapSyntaxError("Unknown FETCH modifier")
    items = list(token.items)
    changed_since: int | None = None
    vanished = False
    while items:
        name = atom_upper(items.pop(0))
        if name == b"CHANGEDSINCE" and changed_since is None and items:
            changed_since = number(items.pop(0))
        elif name == b"VANISHED" and not vanished:
            vanished = True
        else:
            raise ImapSyntaxError("Unknown FETCH modifier")
    if vanished and changed_since is None:
        raise ImapSyntaxError("VANISHED needs CHANGEDSINCE")
    return changed_since, vanished


def vanished_line(uids: Iterable[int], *, earlier: bool) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (empty when there are no UIDs)."""
    ordered = sorted(uids)
    if not ordered:
        return b""
    return b"* VANISHED %s%s\r\n" % (b"(EARLIER) " if earlier else b"", format_sequence(ordered))


async def expunged_in(store: Any, view: Any, modseq: int, ranges: Ranges | None) -> list[int]:
    """UIDs expunged from the view's mailbox after *modseq*, within *ranges* (all if None;
    ``*`` is the highest UID the mailbox has given)."""
    mailbox = view.mailbox
    gone = await store.messages.expunged_since(mailbox.account_id, mailbox.id, modseq)
    if ranges is None:
        return list(gone)
    star = max(view.uidnext - 1, 1)
    return [uid for uid in gone if in_ranges(uid, ranges, star)]


async def resync(store: Any, view: Any, params: QresyncParams) -> bytes:
    """What a SELECT with QRESYNC adds after its usual responses: nothing if the
    UIDVALIDITY changed, else the VANISHED (EARLIER) UIDs and the changed messages' flags."""
    if params.uidvalidity != view.mailbox.uidvalidity:
        return b""
    known = params.known_uids
    lines = [vanished_line(await expunged_in(store, view, params.modseq, known), earlier=True)]
    star = max(view.uidnext - 1, 1)
    for seq, uid in view.changed_since(params.modseq):
        if known is None or in_ranges(uid, known, star):
            lines.append(view.flags_line(seq, uid, True))
    return b"".join(lines)
