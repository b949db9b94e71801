"""The values an IMAP command's arguments are lexed into.

:mod:`a3mail.imap.lexer` turns the argument bytes of one complete command (its literals
already read) into a sequence of these tokens; the command parsers (FETCH items, SEARCH keys,
mailbox names, ...) consume them.

- :class:`Atom`: atoms, numbers, sequence sets, ``NIL``, flags (``\\Seen``) and fetch
  attributes.  A ``[`` inside an atom runs to its matching ``]`` (spaces and parentheses
  included), then an optional ``<...>`` partial follows, so
  ``BODY.PEEK[HEADER.FIELDS (From To)]<0.100>`` is ONE atom.  Case is preserved.
- :class:`String`: a quoted string (escapes removed) or a literal (``literal=True``).
- :class:`ParenList`: a parenthesised list of tokens.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Atom:
    """An atom, number, sequence set, flag, ``NIL`` or fetch attribute, case preserved."""

    value: bytes


@attrs.frozen
class String:
    """A quoted string (unescaped) or a literal's bytes."""

    value: bytes
    literal: bool = False


@attrs.frozen
class ParenList:
    """A parenthesised list."""

    items: tuple[Token, ...]


Token = Atom | String | ParenList


class ImapSyntaxError(Exception):
    """A command's arguments do not parse; ``str(error)`` is safe to send in a BAD reply."""
