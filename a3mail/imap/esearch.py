"""ESEARCH (RFC 4731): ``SEARCH RETURN (MIN MAX COUNT ALL) ...`` and its answer.

With a RETURN option list, SEARCH and UID SEARCH answer one ``* ESEARCH (TAG "t") [UID]``
line carrying only what was asked: the lowest and highest match, their number, and all of
them as a compact set (``RETURN ()`` means ``ALL``).  Nothing matched: only ``COUNT 0`` if
COUNT was asked.  A search with a MODSEQ key adds ``MODSEQ n`` (RFC 7162 3.1.5).

``SAVE`` (SEARCHRES, RFC 5182) keeps the result in the session for ``$``; alone it
answers no ESEARCH line.
"""

from __future__ import annotations

from collections.abc import Sequence

from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, Token
from a3mail.imap.wire import atom_upper, format_sequence

OPTIONS = frozenset({b"MIN", b"MAX", b"COUNT", b"ALL", b"SAVE"})


def split_return_options(args: Sequence[Token]) -> tuple[frozenset[bytes] | None, list[Token]]:
    """``RETURN (options)`` at the start of SEARCH's arguments: the options (None when
    there is no RETURN) and the rest.  ImapSyntaxError (BAD) for an unknown option."""
    if not args or not isinstance(args[0], Atom) or args[0].value.upper() != b"RETURN":
        return None, list(args)
    if len(args) < 2 or not isinstance(args[1], ParenList):
        raise ImapSyntaxError("RETURN takes a parenthesised list of options")
    options = frozenset(atom_upper(item) for item in args[1].items)
    if not options <= OPTIONS:
        raise ImapSyntaxError("Unknown SEARCH return option")
    return options or frozenset({b"ALL"}), list(args[2:])


def saved_part(options: frozenset[bytes], uids: Sequence[int]) -> list[int]:
    """What ``RETURN (SAVE ...)`` keeps of the ascending matching *uids* (RFC 5182 2.4):
    only the lowest and/or highest when SAVE comes with MIN and/or MAX but neither COUNT
    nor ALL; otherwise all of them."""
    if not uids or options & {b"COUNT", b"ALL"} or not options & {b"MIN", b"MAX"}:
        return list(uids)
    kept = set()
    if b"MIN" in options:
        kept.add(uids[0])
    if b"MAX" in options:
        kept.add(uids[-1])
    return sorted(kept)


def esearch_line(
    tag: bytes,
    uid_mode: bool,
    options: frozenset[bytes],
    numbers: Sequence[int],
    modseq: int | None = None,
) -> bytes:
    """The ``* ESEARCH`` response for ascending *numbers* (sequence numbers or UIDs)."""
    parts = [b'* ESEARCH (TAG "%s")' % tag]
    if uid_mode:
        parts.append(b"UID")
    if numbers:
        if b"MIN" in options:
            parts.append(b"MIN %d" % numbers[0])
        if b"MAX" in options:
            parts.append(b"MAX %d" % numbers[-1])
    if b"COUNT" in options:
        parts.append(b"COUNT %d" % len(numbers))
    if numbers and b"ALL" in options:
        parts.append(b"ALL " + format_sequence(numbers))
    if numbers and modseq is not None:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + b"\r\n"
