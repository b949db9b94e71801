"""The FETCH data items of one command, parsed from tokens (RFC 3501 6.4.5, RFC 3516, RFC 7162).

:func:`parse_fetch_items` turns what follows the sequence set of a FETCH command into a
:class:`FetchSpec`: the items in request order (macros expanded, duplicates dropped) and what
the server has to load to answer them (the message file, the cached parse) and whether the
command sets ``\\Seen``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, Token

#: At most this many data items in one FETCH, after macro expansion.
MAX_ITEMS = 64
#: At most this many header field names in one HEADER.FIELDS list.
MAX_FIELDS = 256
#: At most this many levels in a section part number (``1.2.3...``).
MAX_PART_DEPTH = 64
#: Largest number accepted in part numbers and partial ranges (IMAP numbers are 32-bit).
MAX_NUMBER = 4294967295

# Simple (non-section) items, by their upper-cased name.
FLAGS = "FLAGS"
INTERNALDATE = "INTERNALDATE"
RFC822_SIZE = "RFC822.SIZE"
ENVELOPE = "ENVELOPE"
BODY = "BODY"
BODYSTRUCTURE = "BODYSTRUCTURE"
UID = "UID"
RFC822 = "RFC822"
RFC822_HEADER = "RFC822.HEADER"
RFC822_TEXT = "RFC822.TEXT"
MODSEQ = "MODSEQ"
# Section items.
BODY_SECTION = "BODY[]"
BINARY = "BINARY[]"
BINARY_SIZE = "BINARY.SIZE[]"

SIMPLE_ITEMS = frozenset(
    {
        FLAGS,
        INTERNALDATE,
        RFC822_SIZE,
        ENVELOPE,
        BODY,
        BODYSTRUCTURE,
        UID,
        RFC822,
        RFC822_HEADER,
        RFC822_TEXT,
        MODSEQ,
    }
)
MACROS: dict[str, tuple[str, ...]] = {
    "ALL": (FLAGS, INTERNALDATE, RFC822_SIZE, ENVELOPE),
    "FAST": (FLAGS, INTERNALDATE, RFC822_SIZE),
    "FULL": (FLAGS, INTERNALDATE, RFC822_SIZE, ENVELOPE, BODY),
}

# Section texts (after the part number, if any).
HEADER = "HEADER"
HEADER_FIELDS = "HEADER.FIELDS"
HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
TEXT = "TEXT"
MIME = "MIME"
_TEXTS = frozenset({"", HEADER, HEADER_FIELDS, HEADER_FIELDS_NOT, TEXT, MIME})

_SECTION_ITEM = re.compile(
    rb"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[(.*)\](?:<([0-9]+)\.([0-9]+)>)?$",
    re.IGNORECASE | re.DOTALL,
)
_FIELD_NAME = re.compile(rb"^[!#-9;-~]+$")
_FIELD_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|([^\s"()]+)', re.DOTALL)
_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")


@attrs.frozen
class Section:
    """A body section: ``part`` numbers (empty for the whole message), then ``text``
    (``""``, ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT`` or ``MIME``)
    and, for the HEADER.FIELDS forms, the field names as the client wrote them."""

    part: tuple[int, ...] = ()
    text: str = ""
    fields: tuple[bytes, ...] = ()

    def label(self) -> bytes:
        """The section as it appears between the brackets of the response."""
        out = ".".join(str(n) for n in self.part)
        if self.text:
            out = f"{out}.{self.text}" if out else self.text
        data = out.encode("ascii")
        if self.text in (HEADER_FIELDS, HEADER_FIELDS_NOT):
            data += b" (" + b" ".join(_field_label(f) for f in self.fields) + b")"
        return data


def _field_label(name: bytes) -> bytes:
    return name if _FIELD_NAME.match(name) else b'"' + name + b'"'


@attrs.frozen
class FetchItem:
    """One data item.  ``name`` is one of the item constants of this module (upper case;
    ``BODY[]``, ``BINARY[]``, ``BINARY.SIZE[]`` for the section forms, whose ``section`` is
    set).  ``peek`` is True for ``.PEEK`` forms, ``partial`` is ``(origin, length)``."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None

    @property
    def sets_seen(self) -> bool:
        """Whether fetching this item sets ``\\Seen`` (RFC 3501: BODY[...], RFC822, RFC822.TEXT)."""
        if self.name in (BODY_SECTION, BINARY):
            return not self.peek
        return self.name in (RFC822, RFC822_TEXT)

    @property
    def needs_file(self) -> bool:
        """Whether answering needs the stored message bytes."""
        return self.name in (BODY_SECTION, BINARY, BINARY_SIZE, RFC822, RFC822_HEADER, RFC822_TEXT)

    @property
    def header_only(self) -> bool:
        """Whether the message's top-level header is all of the file this item reads
        (``BODY[HEADER]``, ``BODY[HEADER.FIELDS (..)]``, ``.NOT``, ``RFC822.HEADER``)."""
        if self.name == RFC822_HEADER:
            return True
        section = self.section
        return (
            self.name == BODY_SECTION
            and section is not None
            and not section.part
            and section.text in (HEADER, HEADER_FIELDS, HEADER_FIELDS_NOT)
        )

    @property
    def needs_parsed(self) -> bool:
        """Whether answering needs the cached parse (envelope, body tree)."""
        if self.name in (ENVELOPE, BODY, BODYSTRUCTURE, BINARY, BINARY_SIZE):
            return True
        return self.section is not None and bool(self.section.part)


@attrs.frozen
class FetchSpec:
    """The parsed data items of a FETCH command.

    - ``items``: the :class:`FetchItem` s in request order (macros expanded, duplicates dropped).
    - ``needs_file``: the message file must be opened and passed to ``render_fetch``.
    - ``needs_parsed``: ask ``fetch_info(..., with_parsed=True)``.
    - ``header_only``: the file is needed, but only its top-level header (a header sync):
      reading the first ``header_size`` bytes of each file is enough.
    - ``sets_seen``: a non-peek ``BODY[...]``/``BINARY[...]``, ``RFC822`` or ``RFC822.TEXT``
      was asked: set ``\\Seen`` on the messages (read-write mailbox only) before answering.
    - ``wants_modseq``: ``MODSEQ`` was asked (CONDSTORE: the session enables it and includes
      MODSEQ in its FETCH responses from now on).
    """

    items: tuple[FetchItem, ...]

    @property
    def needs_file(self) -> bool:
        """See the class docstring."""
        return any(item.needs_file for item in self.items)

    @property
    def needs_parsed(self) -> bool:
        """See the class docstring."""
        return any(item.needs_parsed for item in self.items)

    @property
    def header_only(self) -> bool:
        """See the class docstring."""
        return self.needs_file and all(item.header_only for item in self.items if item.needs_file)

    @property
    def sets_seen(self) -> bool:
        """See the class docstring."""
        return any(item.sets_seen for item in self.items)

    @property
    def wants_modseq(self) -> bool:
        """See the class docstring."""
        return any(item.name == MODSEQ for item in self.items)

    @property
    def flags_only(self) -> bool:
        """Only FLAGS, UID and MODSEQ are asked: ``store.search.fetch_flags`` records (much
        cheaper than ``fetch_info``) are enough for ``render_fetch``."""
        return all(item.name in (FLAGS, UID, MODSEQ) for item in self.items)

    @property
    def wants_uid(self) -> bool:
        """Whether ``UID`` was asked explicitly."""
        return any(item.name == UID for item in self.items)


def parse_fetch_items(tokens: Sequence[Token]) -> FetchSpec:
    """Parse the FETCH items that follow the sequence set.

    *tokens* is one :class:`Atom` (an item or a macro ``ALL``/``FAST``/``FULL``) or one
    :class:`ParenList` of Atoms.  A bracketed item arrives as ONE atom, e.g.
    ``BODY.PEEK[HEADER.FIELDS (From To)]<0.100>``; names are case-insensitive.  Raises
    :class:`~a3mail.imap.tokens.ImapSyntaxError` (message safe to send in BAD) otherwise.
    """
    if len(tokens) != 1:
        raise ImapSyntaxError("expected one fetch item or a parenthesised list")
    token = tokens[0]
    if isinstance(token, Atom):
        macro = MACROS.get(token.value.upper().decode("ascii", "replace"))
        if macro is not None:
            return FetchSpec(tuple(FetchItem(name) for name in macro))
        atoms: Sequence[Token] = (token,)
    elif isinstance(token, ParenList):
        atoms = token.items
        if not atoms:
            raise ImapSyntaxError("empty fetch item list")
    else:
        raise ImapSyntaxError("expected fetch items")
    if len(atoms) > MAX_ITEMS:
        raise ImapSyntaxError("too many fetch items")
    items: list[FetchItem] = []
    for atom in atoms:
        if not isinstance(atom, Atom):
            raise ImapSyntaxError("bad fetch item")
        item = parse_item(atom.value)
        if item not in items:
            items.append(item)
    return FetchSpec(tuple(items))


def parse_item(value: bytes) -> FetchItem:
    """Parse one fetch attribute (not a macro); raises ImapSyntaxError."""
    name = value.upper().decode("ascii", "replace")
    if name in SIMPLE_ITEMS:
        return FetchItem(name)
    m = _SECTION_ITEM.match(value)
    if m is None:
        raise ImapSyntaxError("unknown fetch item")
    kind = m.group(1).upper().decode("ascii")
    partial = _partial(m.group(3), m.group(4))
    if kind.startswith("BINARY"):
        section = Section(
            part=_part_numbers(m.group(2).decode("ascii", "replace"), allow_empty=True)
        )
        if kind == "BINARY.SIZE":
            if partial is not None:
                raise ImapSyntaxError("BINARY.SIZE takes no partial range")
            return FetchItem(BINARY_SIZE, section)
        return FetchItem(BINARY, section, peek=kind.endswith("PEEK"), partial=partial)
    return FetchItem(BODY_SECTION, parse_section(m.group(2)), kind.endswith("PEEK"), partial)


def _partial(origin: bytes | None, length: bytes | None) -> tuple[int, int] | None:
    if origin is None or length is None:
        return None
    start, count = int(origin), int(length)
    if start > MAX_NUMBER or count > MAX_NUMBER or count == 0:
        raise ImapSyntaxError("bad partial range")
    return start, count


def _part_numbers(text: str, *, allow_empty: bool = False) -> tuple[int, ...]:
    if not text:
        if allow_empty:
            return ()
        raise ImapSyntaxError("bad section")
    pieces = text.split(".")
    if len(pieces) > MAX_PART_DEPTH or not all(_NUMBER.match(p) for p in pieces):
        raise ImapSyntaxError("bad section part number")
    numbers = tuple(int(p) for p in pieces)
    if any(n > MAX_NUMBER for n in numbers):
        raise ImapSyntaxError("bad section part number")
    return numbers


def parse_section(raw: bytes) -> Section:
    """Parse the text between the brackets of ``BODY[...]``; raises ImapSyntaxError."""
    spec, paren, rest = raw.partition(b"(")
    fields: tuple[bytes, ...] = ()
    if paren:
        fields = _field_names(rest)
        spec = spec.rstrip(b" ")
    text = spec.decode("ascii", "replace")
    pieces = text.split(".") if text else []
    numbers: list[str] = []
    while pieces and pieces[0].isdigit():
        numbers.append(pieces.pop(0))
    part = _part_numbers(".".join(numbers), allow_empty=True)
    name = ".".join(pieces).upper()
    if name not in _TEXTS or (name == MIME and not part):
        raise ImapSyntaxError("bad section")
    if name in (HEADER_FIELDS, HEADER_FIELDS_NOT) and not paren:
        raise ImapSyntaxError("HEADER.FIELDS needs a list of field names")
    if paren and name not in (HEADER_FIELDS, HEADER_FIELDS_NOT):
        raise ImapSyntaxError("bad section")
    return Section(part, name, fields)


def _field_names(rest: bytes) -> tuple[bytes, ...]:
    """The field names of ``name name ...)`` (atoms or quoted strings)."""
    body = rest.rstrip(b" ")
    if not body.endswith(b")"):
        raise ImapSyntaxError("bad header field list")
    body = body[:-1]
    names: list[bytes] = []
    pos = 0
    while pos < len(body):
        if body[pos : pos + 1] == b" ":
            pos += 1
            continue
        m = _FIELD_TOKEN.match(body, pos)
        if m is None:
            raise ImapSyntaxError("bad header field list")
        name = m.group(1) if m.group(1) is not None else m.group(2)
        name = re.sub(rb"\\(.)", rb"\1", name) if m.group(1) is not None else name
        if not _FIELD_NAME.match(name):
            raise ImapSyntaxError("bad header field name")
        names.append(name)
        pos = m.end()
    if not names or len(names) > MAX_FIELDS:
        raise ImapSyntaxError("bad header field list")
    return tuple(names)
