"""MIME header values with parameters: Content-Type, Content-Disposition (RFC 2045, 2231).

Parameter names are lowercased; values are kept exactly as written (case
preserved, quotes removed, backslash escapes resolved). RFC 2231
continuations and charsets are joined and decoded. A parameter without a
value, or garbage, is skipped; nothing here raises.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .charsets import clean, decode_bytes
from .headers import MAX_PARSED_VALUE

Params = list[list[str]]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")
_NAME = re.compile(r"[^=;]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"?', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_COMMENT = re.compile(r"\([^()]*\)")
_RFC2231 = re.compile(r"^([^*]+)(?:\*(\d{1,4}))?(\*)?$")


def _raw_params(text: str, pos: int) -> list[tuple[str, str]]:
    """Split ``; name=value`` pairs from ``text[pos:]``."""
    out: list[tuple[str, str]] = []
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in " \t\r\n;":
            pos += 1
        if pos >= n:
            break
        m = _NAME.match(text, pos)
        assert m is not None  # _NAME matches the empty string
        name = m.group(0).strip().lower()
        pos = m.end()
        if pos >= n or text[pos] == ";":
            continue
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == '"':
            q = _QUOTED.match(text, pos)
            assert q is not None
            value = _ESCAPE.sub(r"\1", q.group(1))
            quoted = True
            semi = text.find(";", q.end())
        else:
            semi = text.find(";", pos)
            value = text[pos : n if semi < 0 else semi].strip()
            quoted = False
        pos = n if semi < 0 else semi
        if _TOKEN.match(name) and (value or quoted):
            out.append((name, value))
    return out


def _join_2231(segments: dict[int, tuple[str, bool]]) -> str:
    """Join RFC 2231 segments (index -> (value, percent-encoded)) and decode them."""
    ordered = [segments[i] for i in sorted(segments)]
    charset: str | None = None
    first, encoded = ordered[0]
    if encoded and first.count("'") >= 2:
        charset, _lang, rest = first.split("'", 2)
        ordered[0] = (rest, True)
    if not any(enc for _value, enc in ordered):
        return "".join(value for value, _enc in ordered)
    data = b"".join(
        unquote_to_bytes(value) if enc else value.encode("utf-8", "surrogateescape")
        for value, enc in ordered
    )
    return clean(decode_bytes(data, charset or None))


def parse_params(text: str, pos: int = 0) -> Params:
    """Parse the parameters in ``text[pos:]`` into ``[[name, value], ...]``.

    Duplicates keep the first value, except that an RFC 2231 form
    (``name*=`` or ``name*0=``...) wins over a plain ``name=``.
    """
    order: list[str] = []
    seen: set[str] = set()
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in _raw_params(text, pos):
        m = _RFC2231.match(name)
        if m is None or (m.group(2) is None and m.group(3) is None):
            key = name
            plain.setdefault(name, value)
        else:
            key = m.group(1)
            index = int(m.group(2)) if m.group(2) is not None else 0
            segments = extended.setdefault(key, {})
            segments.setdefault(index, (value, m.group(3) is not None))
        if key not in seen:
            seen.add(key)
            order.append(key)
    result: Params = []
    for name in order:
        if name in extended:
            result.append([name, _join_2231(extended[name])])
        else:
            result.append([name, plain[name]])
    return result


def split_value(text: str | None) -> tuple[str, Params]:
    """Split ``value; a=b; ...`` into the lowercased, comment-free value and its parameters."""
    if not text:
        return "", []
    text = text[:MAX_PARSED_VALUE]
    semi = text.find(";")
    head = text if semi < 0 else text[:semi]
    value = _COMMENT.sub("", head).strip().lower()
    return value, ([] if semi < 0 else parse_params(text, semi + 1))


def parse_content_type(text: str | None) -> tuple[str, str, Params] | None:
    """``(type, subtype, params)`` from a Content-Type value, or None if unusable."""
    value, params = split_value(text)
    kind, slash, sub = value.partition("/")
    kind, sub = kind.strip(), sub.strip()
    if not slash or not _TOKEN.match(kind) or not _TOKEN.match(sub):
        return None
    return kind, sub, params
