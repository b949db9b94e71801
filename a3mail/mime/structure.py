"""The MIME tree of a message with absolute byte offsets (the BODYSTRUCTURE source).

Each node is a JSON-able dict; see :func:`parse_tree`. The tree is found by
scanning the stored bytes, never by re-serialising, so IMAP can serve
``BODY[n]``, ``BODY[n.MIME]``, ``BODY[n.HEADER]`` byte-exact from the file.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .envelope import build_envelope
from .headers import Headers, parse_headers
from .params import Params, parse_content_type, split_value
from .scan import Buffer, count_lines, header_end, iter_delimiters, part_header_end

Node = dict[str, Any]
ContentType = tuple[str, str, Params]

TEXT_PLAIN: ContentType = ("text", "plain", [["charset", "us-ascii"]])
MESSAGE_RFC822: ContentType = ("message", "rfc822", [])
OPAQUE: ContentType = ("application", "octet-stream", [])

_ENCODING = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@attrs.define
class _Context:
    buf: Buffer
    max_parts: int
    max_depth: int
    count: int = 0


def _child_section(prefix: str, index: int) -> str:
    return f"{prefix}.{index}" if prefix else str(index)


def _content_type(headers: Headers, default: ContentType) -> ContentType:
    parsed = parse_content_type(headers.get("content-type"))
    if parsed is None:
        kind, sub, params = default
        return kind, sub, [list(p) for p in params]
    return parsed


def _disposition(headers: Headers) -> list[Any] | None:
    kind, params = split_value(headers.get("content-disposition"))
    return [kind, params] if kind else None


def _language(headers: Headers) -> list[str] | None:
    value = headers.get("content-language")
    if value is None:
        return None
    tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    return tags or None


def _encoding(headers: Headers) -> str:
    """The Content-Transfer-Encoding token, uppercased; 7BIT when absent or empty."""
    m = _ENCODING.search(headers.get("content-transfer-encoding") or "")
    return m.group(0).upper() if m else "7BIT"


def _node(
    ctx: _Context,
    headers: Headers,
    ctype: ContentType,
    offsets: tuple[int, int, int],
    section: str | None,
    prefix: str,
    depth: int,
) -> Node:
    """Build the node for one entity; ``section`` None means "root of a message"."""
    hs, bs, be = offsets
    ctx.count += 1
    kind, sub, params = ctype
    container = kind == "multipart" or (kind, sub) == ("message", "rfc822")
    if container and (depth >= ctx.max_depth or ctx.count > ctx.max_parts):
        kind, sub, params = OPAQUE[0], OPAQUE[1], []
    if section is None:
        section = prefix if kind == "multipart" else _child_section(prefix, 1)
    node: Node = {
        "section": section,
        "type": kind,
        "subtype": sub,
        "params": params,
        "id": headers.get("content-id"),
        "description": headers.get("content-description"),
        "encoding": _encoding(headers),
        "size": be - bs,
        "lines": None,
        "md5": headers.get("content-md5"),
        "disposition": _disposition(headers),
        "language": _language(headers),
        "location": headers.get("content-location"),
        "header_start": hs,
        "body_start": bs,
        "body_end": be,
    }
    if kind == "multipart":
        node["children"] = _children(ctx, node, prefix, depth + 1)
    elif (kind, sub) == ("message", "rfc822"):
        inner_headers, inner = _message(ctx, bs, be, section, depth + 1)
        node["message"] = {"envelope": build_envelope(inner_headers), "body": inner}
    if kind == "text" or (kind, sub) == ("message", "rfc822"):
        node["lines"] = count_lines(ctx.buf, bs, be)
    return node


def _message(ctx: _Context, start: int, end: int, prefix: str, depth: int) -> tuple[Headers, Node]:
    """Parse a whole message (top level or encapsulated) in ``[start, end)``."""
    bs = header_end(ctx.buf, start, end)
    headers = parse_headers(bytes(ctx.buf[start:bs]))
    ctype = _content_type(headers, TEXT_PLAIN)
    return headers, _node(ctx, headers, ctype, (start, bs, end), None, prefix, depth)


def _part(ctx: _Context, start: int, end: int, section: str, depth: int, digest: bool) -> Node:
    """Parse one body part of a multipart in ``[start, end)``."""
    bs = part_header_end(ctx.buf, start, end)
    headers = parse_headers(bytes(ctx.buf[start:bs]))
    ctype = _content_type(headers, MESSAGE_RFC822 if digest else TEXT_PLAIN)
    return _node(ctx, headers, ctype, (start, bs, end), section, section, depth)


def _implicit(ctx: _Context, start: int, end: int, section: str, ctype: ContentType) -> Node:
    """A headerless part made up by us: the only child of a part-less multipart,
    or the opaque rest of a multipart once ``max_parts`` is reached."""
    empty = Headers([])
    return _node(ctx, empty, ctype, (start, start, end), section, section, 0)


def _children(ctx: _Context, node: Node, prefix: str, depth: int) -> list[Node]:
    """The body parts of a multipart node (always at least one)."""
    bs, be = node["body_start"], node["body_end"]
    boundary = next((v for k, v in node["params"] if k == "boundary"), "")
    digest = node["subtype"] == "digest"
    children: list[Node] = []
    delimiters = iter_delimiters(ctx.buf, bs, be, boundary.encode("utf-8", "replace"))
    first = next(delimiters, None) if boundary else None
    if first is None or first.close:
        end = be if first is None else first.start
        text = (TEXT_PLAIN[0], TEXT_PLAIN[1], [list(p) for p in TEXT_PLAIN[2]])
        return [_implicit(ctx, bs, end, _child_section(prefix, 1), text)]
    start = first.line_end
    closed = False
    for delimiter in delimiters:
        section = _child_section(prefix, len(children) + 1)
        if ctx.count >= ctx.max_parts:
            children.append(_implicit(ctx, start, be, section, (*OPAQUE[:2], [])))
            return children
        end = max(start, delimiter.start)
        children.append(_part(ctx, start, end, section, depth, digest))
        if delimiter.close:
            closed = True
            break
        start = delimiter.line_end
    if not closed:
        section = _child_section(prefix, len(children) + 1)
        if ctx.count >= ctx.max_parts:
            children.append(_implicit(ctx, start, be, section, (*OPAQUE[:2], [])))
        else:
            children.append(_part(ctx, start, be, section, depth, digest))
    return children


def parse_tree(buf: Buffer, max_parts: int, max_depth: int) -> tuple[Headers, Node]:
    """Parse the whole message in ``buf``: its top-level header and its body tree.

    Node keys: ``section`` (IMAP part number; ``""`` for a top-level multipart,
    ``"1"`` for a top-level single part), ``type``, ``subtype``, ``params``,
    ``id``, ``description``, ``encoding``, ``size``, ``lines``, ``md5``,
    ``disposition``, ``language``, ``location``, ``header_start``,
    ``body_start``, ``body_end``, plus ``children`` (multipart) or ``message``
    (``{"envelope", "body"}``, message/rfc822). A container nested deeper than
    ``max_depth`` or beyond ``max_parts`` becomes an application/octet-stream leaf.
    """
    ctx = _Context(buf, max(1, max_parts), max(0, min(max_depth, 200)))
    return _message(ctx, 0, len(buf), "", 0)
