"""The header fields inbound authentication reads: From (for DMARC) and DKIM-Signature.

The parser is deliberately forgiving and never raises: it splits the header section the
way dkimpy does (lines end in CRLF or LF, the section ends at the first empty line),
unfolds continuation lines and skips lines that are not fields.  Address parsing knows
quoted strings, comments, angle addresses and groups, enough to find the domain of each
mailbox in a From field without being fooled by an C{@} in a display name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from a3mail.smtp.dns import normalize_name

__all__ = [
    "AuthorDomain",
    "author_domain",
    "header_fields",
    "mailbox_addresses",
    "tag_list",
]

_LINE_END = re.compile(rb"\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")


def header_fields(message: bytes) -> list[tuple[str, bytes]]:
    """
    The header fields of C{message} as C{(lower-case name, unfolded value)} pairs.

    Line ends inside a folded value are removed (RFC 5322 unfolding); leading whitespace
    of the value is kept as is.  Lines that are neither a field nor a continuation are
    skipped, and so are continuations that follow them.
    """
    if message.startswith((b"\r\n", b"\n")):
        return []
    end = _BLANK_LINE.search(message)
    block = message if end is None else message[: end.start()]
    fields: list[tuple[str, bytearray]] = []
    continuing = False
    for line in _LINE_END.split(block):
        if line[:1] in (b" ", b"\t"):
            if continuing:
                fields[-1][1].extend(line)
            continue
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t")  # obsolete syntax: whitespace before the colon
        continuing = bool(colon) and _FIELD_NAME.fullmatch(name) is not None
        if continuing:
            fields.append((name.decode("ascii").lower(), bytearray(value)))
    return [(name, bytes(value)) for name, value in fields]


def tag_list(value: bytes) -> dict[str, bytes]:
    """
    A DKIM/DMARC tag list (C{tag=value; ...}) as a dict; whitespace around tags is dropped.

    The first occurrence of a tag wins; parts without C{=} are ignored.
    """
    tags: dict[str, bytes] = {}
    for part in value.split(b";"):
        name, equals, tag_value = part.partition(b"=")
        if not equals:
            continue
        key = name.strip(b" \t\r\n").decode("ascii", "replace").lower()
        tags.setdefault(key, tag_value.strip(b" \t\r\n"))
    return tags


def mailbox_addresses(value: str) -> list[str]:
    """
    The addr-specs of an address-list field value, e.g. C{['a@example.com']}.

    Display names, comments and group names are dropped; an empty group yields nothing.
    An address without angle brackets is the mailbox's whole text with whitespace removed.
    """
    addresses: list[str] = []
    plain: list[str] = []
    angle: list[str] | None = None
    angle_address: str | None = None
    quoted = False
    comment_depth = 0
    escaped = False

    def finish() -> None:
        nonlocal angle_address, plain, angle
        address = angle_address if angle_address is not None else "".join(plain)
        address = "".join(address.split())
        if address:
            addresses.append(address)
        plain, angle, angle_address = [], None, None

    for ch in value:
        target = angle if angle is not None else plain
        if escaped:
            escaped = False
            if not comment_depth:
                target.append(ch)
        elif ch == "\\" and (quoted or comment_depth):
            escaped = True
            if quoted:
                target.append(ch)
        elif quoted:
            target.append(ch)
            quoted = ch != '"'
        elif comment_depth:
            comment_depth += {"(": 1, ")": -1}.get(ch, 0)
        elif ch == "(":
            comment_depth = 1
        elif ch == '"':
            quoted = True
            target.append(ch)
        elif ch == "<" and angle is None:
            angle = []
        elif ch == ">" and angle is not None:
            angle_address = "".join(angle)
            angle = None
        elif ch in ",;" and angle is None:
            finish()
        elif ch == ":" and angle is None:
            plain = []  # the display name of a group
        else:
            target.append(ch)
    finish()
    return addresses


@attrs.frozen
class AuthorDomain:
    """
    The RFC5322.From domain as DMARC sees it.

    @ivar domain: the domain (normalised), or L{None} when there is none to evaluate.
    @ivar problem: L{None}, or C{"none"} (no From field: excluded from DMARC) or
        C{"permerror"} (several From fields, mailboxes of different domains, or a From
        without a usable domain).
    """

    domain: str | None
    problem: str | None = None


def author_domain(fields: Sequence[tuple[str, bytes]]) -> AuthorDomain:
    """Find the RFC5322.From domain (RFC 7489 6.6.1) among the header fields."""
    values = [value for name, value in fields if name == "from"]
    if not values:
        return AuthorDomain(None, "none")
    if len(values) > 1:
        return AuthorDomain(None, "permerror")
    text = values[0].decode("utf-8", "replace")
    domains = set()
    for address in mailbox_addresses(text):
        _, at, domain = address.rpartition("@")
        normal = normalize_name(domain) if at else None
        if normal is None or "." not in normal or normal.startswith("["):
            return AuthorDomain(None, "permerror")
        domains.add(normal)
    if len(domains) != 1:
        return AuthorDomain(None, "permerror")
    return AuthorDomain(domains.pop())
