"""RFC 5322 address lists, including groups and obsolete forms, tolerant of garbage.

:func:`parse_addresses` returns IMAP ENVELOPE address structures (RFC 3501):
display names are unquoted but NOT RFC 2047 decoded. :func:`decoded_addresses`
turns those into ``{"name", "address"}`` pairs with decoded names.
"""

from __future__ import annotations

import re
from typing import Any

from .headers import MAX_PARSED_VALUE
from .rfc2047 import decode_words

#: Host used for a mailbox without a domain, so it is not mistaken for a group
#: marker (RFC 3501 marks groups with a NIL host), as in UW c-client.
MISSING_HOST = ".MISSING-HOST-NAME."

Token = tuple[str, str]

_SPECIALS = "<>@,;:."
_ATOM = re.compile(r'[^\s"(),.:;<>@\[\]\\]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_PAREN = re.compile(r"[()\\]")
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+(\.[^.]+)*$")


def _comment_end(text: str, pos: int) -> int:
    """Index just after the (nested) comment opening at ``text[pos]``."""
    depth = 0
    while True:
        m = _PAREN.search(text, pos)
        if m is None:
            return len(text)
        pos = m.end()
        if m.group(0) == "\\":
            pos += 1
            continue
        depth += 1 if m.group(0) == "(" else -1
        if depth == 0:
            return pos


def tokenize(text: str) -> list[Token]:
    """Split an address header value into ``(kind, value)`` tokens.

    Kinds: ``atom``, ``qs`` (unquoted content), ``comment`` (without parens),
    ``dlit`` (domain literal, with brackets), or a special character itself.
    """
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch in " \t\r\n":
            pos += 1
        elif ch == '"':
            m = _QUOTED.match(text, pos)
            assert m is not None
            tokens.append(("qs", _ESCAPE.sub(r"\1", m.group(1))))
            pos = m.end()
        elif ch == "(":
            end = _comment_end(text, pos)
            inner_end = end - 1 if text[end - 1 : end] == ")" and end - 1 > pos else end
            tokens.append(("comment", text[pos + 1 : inner_end]))
            pos = end
        elif ch == "[":
            end = text.find("]", pos)
            end = n if end < 0 else end + 1
            tokens.append(("dlit", text[pos:end]))
            pos = end
        elif ch in _SPECIALS:
            tokens.append((ch, ch))
            pos += 1
        else:
            m = _ATOM.match(text, pos)
            if m is None:
                pos += 1
                continue
            tokens.append(("atom", m.group(0)))
            pos = m.end()
    return tokens


def _phrase(tokens: list[Token]) -> str | None:
    words: list[str] = []
    for kind, value in tokens:
        if kind in ("atom", "qs"):
            words.append(value)
        elif kind == "." and words:
            words[-1] += "."
    text = " ".join(words).strip()
    return text or None


def _comment_name(tokens: list[Token]) -> str | None:
    for kind, value in tokens:
        if kind == "comment" and value.strip():
            return value.strip()
    return None


def _addr_spec(tokens: list[Token]) -> tuple[str, str | None]:
    local: list[str] = []
    domain: list[str] = []
    target = local
    seen_at = False
    prev_word = False
    for kind, value in tokens:
        if kind == "@" and not seen_at:
            seen_at, target, prev_word = True, domain, False
            continue
        if kind in ("atom", "qs", "dlit"):
            if prev_word and target is local:
                target.append(" ")
            target.append(value)
            prev_word = True
        elif kind == ".":
            target.append(".")
            prev_word = False
    return "".join(local).strip(), ("".join(domain).strip() if seen_at else None)


def _mailbox(tokens: list[Token]) -> dict[str, Any] | None:
    """One mailbox (``name <addr>`` or ``addr (comment)``) as an ENVELOPE address."""
    if not tokens:
        return None
    adl: str | None = None
    kinds = [kind for kind, _value in tokens]
    if "<" in kinds:
        lt = kinds.index("<")
        name = _phrase(tokens[:lt]) or _comment_name(tokens[:lt])
        inner = tokens[lt + 1 :]
        if ">" in kinds[lt + 1 :]:
            inner = inner[: kinds[lt + 1 :].index(">")]
        if inner and inner[0][0] == "@" and ":" in [k for k, _v in inner]:
            colon = [k for k, _v in inner].index(":")
            adl = "".join(v for k, v in inner[:colon] if k != "comment") or None
            inner = inner[colon + 1 :]
        mailbox, host = _addr_spec(inner)
    else:
        name = _comment_name(tokens)
        mailbox, host = _addr_spec(tokens)
    if not mailbox and not host:
        if name is None:
            return None
        mailbox = ""
    return {"name": name, "adl": adl, "mailbox": mailbox, "host": host or MISSING_HOST}


def parse_addresses(value: str | None) -> list[dict[str, Any]]:
    """Parse an address list into IMAP ENVELOPE addresses; never raises.

    Group syntax follows RFC 3501: ``{"mailbox": groupname, "host": None}``
    starts a group, ``{"mailbox": None, "host": None}`` ends it. Only the first
    ``MAX_PARSED_VALUE`` characters of the value are parsed.
    """
    if not value:
        return []
    result: list[dict[str, Any]] = []
    chunk: list[Token] = []
    in_group = False
    in_angle = False

    def flush() -> None:
        """Turn the collected tokens into one mailbox entry."""
        entry = _mailbox(chunk)
        if entry is not None:
            result.append(entry)
        chunk.clear()

    for token in tokenize(value[:MAX_PARSED_VALUE]):
        kind = token[0]
        if in_angle:
            chunk.append(token)
            in_angle = kind != ">"
            continue
        if kind == "<":
            in_angle = True
            chunk.append(token)
        elif kind == ",":
            flush()
        elif kind == ":" and not in_group:
            group = _phrase(chunk) or ""
            chunk.clear()
            result.append({"name": None, "adl": None, "mailbox": group, "host": None})
            in_group = True
        elif kind == ";":
            flush()
            if in_group:
                result.append({"name": None, "adl": None, "mailbox": None, "host": None})
                in_group = False
        else:
            chunk.append(token)
    flush()
    if in_group:
        result.append({"name": None, "adl": None, "mailbox": None, "host": None})
    return result


def format_address(mailbox: str, host: str | None) -> str:
    """``local@host``, quoting the local part when it is not a dot-atom."""
    local = mailbox
    if local and not _DOT_ATOM.match(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if host and host != MISSING_HOST:
        return f"{local}@{host}"
    return local


def decoded_addresses(envelope_list: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``[{"name", "address"}]`` from ENVELOPE addresses: groups flattened, names decoded."""
    out: list[dict[str, str]] = []
    for entry in envelope_list:
        if entry["host"] is None:
            continue
        name = decode_words(entry["name"]) if entry["name"] else ""
        out.append({"name": name, "address": format_address(entry["mailbox"], entry["host"])})
    return out
