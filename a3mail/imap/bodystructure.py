"""ENVELOPE and BODY/BODYSTRUCTURE (RFC 3501 7.4.2) rendered from the parse cached at delivery.

Nothing here reads a message body: the structure comes from ``parsed["envelope"]`` and
``parsed["body"]`` (see :mod:`a3mail.mime.structure`).  The cached JSON is treated as
untrusted: wrong types are rendered as NIL or defaults, a part without a type as
``text/plain; charset=us-ascii``, and containers nested too deep as opaque parts, so a hostile
message can never make FETCH fail.
"""

from __future__ import annotations

from typing import Any

from a3mail.imap.quoting import NIL, nstring, number, string

Node = dict[str, Any]

#: Containers nested deeper than this are rendered as application/octet-stream leaves.
MAX_DEPTH = 60
#: A multipart with more children than this is cut (the parser caps parts anyway).
MAX_CHILDREN = 10_000

_ADDRESS_LISTS = ("from", "sender", "reply_to", "to", "cc", "bcc")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _address(entry: Any) -> bytes:
    if not isinstance(entry, dict):
        entry = {}
    fields = (entry.get("name"), entry.get("adl"), entry.get("mailbox"), entry.get("host"))
    return b"(" + b" ".join(nstring(_str(f)) for f in fields) + b")"


def _address_list(value: Any) -> bytes:
    if not isinstance(value, list) or not value:
        return NIL
    return b"(" + b"".join(_address(entry) for entry in value) + b")"


def render_envelope(envelope: Any) -> bytes:
    """The ENVELOPE structure of a cached envelope dict (see ``mime.envelope.build_envelope``)."""
    env = envelope if isinstance(envelope, dict) else {}
    fields = [nstring(_str(env.get("date"))), nstring(_str(env.get("subject")))]
    fields += [_address_list(env.get(name)) for name in _ADDRESS_LISTS]
    fields += [nstring(_str(env.get("in_reply_to"))), nstring(_str(env.get("message_id")))]
    return b"(" + b" ".join(fields) + b")"


def _params(value: Any) -> bytes:
    pairs = []
    if isinstance(value, list):
        for pair in value:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                name, val = _str(pair[0]), _str(pair[1])
                if name and val is not None:
                    pairs.append(string(name.upper()) + b" " + string(val))
    return b"(" + b" ".join(pairs) + b")" if pairs else NIL


def _disposition(value: Any) -> bytes:
    if not isinstance(value, list) or len(value) != 2 or not _str(value[0]):
        return NIL
    return b"(" + string(str(value[0]).upper()) + b" " + _params(value[1]) + b")"


def _language(value: Any) -> bytes:
    tags = [t for t in value if isinstance(t, str)] if isinstance(value, list) else []
    if isinstance(value, str):
        tags = [value]
    if not tags:
        return NIL
    if len(tags) == 1:
        return string(tags[0])
    return b"(" + b" ".join(string(t) for t in tags) + b")"


def _token(value: Any, default: str) -> str:
    text = _str(value)
    return text.upper() if text else default


def _extension(node: Node, *, single: bool) -> bytes:
    """Extension data: md5 (single parts only), disposition, language, location."""
    fields = [nstring(_str(node.get("md5")))] if single else [_params(node.get("params"))]
    fields += [
        _disposition(node.get("disposition")),
        _language(node.get("language")),
        nstring(_str(node.get("location"))),
    ]
    return b" " + b" ".join(fields)


def _opaque(node: Node) -> Node:
    """*node* as an application/octet-stream leaf (for containers nested too deep)."""
    return {**node, "type": "application", "subtype": "octet-stream", "params": []} | {
        "children": None,
        "message": None,
    }


def render_body(node: Any, *, extensible: bool, depth: int = 0) -> bytes:
    """``BODYSTRUCTURE`` (``extensible=True``) or ``BODY`` of a cached body tree node."""
    if not isinstance(node, dict):
        node = {}
    kind = _token(node.get("type"), "TEXT")
    subtype = _token(node.get("subtype"), "PLAIN" if kind == "TEXT" else "OCTET-STREAM")
    if not _str(node.get("type")):
        kind, subtype = "TEXT", "PLAIN"
    children = node.get("children")
    inner = node.get("message")
    if depth >= MAX_DEPTH and (kind == "MULTIPART" or (kind, subtype) == ("MESSAGE", "RFC822")):
        return render_body(_opaque(node), extensible=extensible, depth=depth)
    if kind == "MULTIPART" and isinstance(children, list) and children:
        parts = b"".join(
            render_body(child, extensible=extensible, depth=depth + 1)
            for child in children[:MAX_CHILDREN]
        )
        out = b"(" + parts + b" " + string(subtype)
        return out + (_extension(node, single=False) if extensible else b"") + b")"
    if kind == "MULTIPART":
        kind, subtype = "TEXT", "PLAIN"  # a multipart without parts: show it as text
    params = node.get("params")
    if kind == "TEXT" and not _has_charset(params):
        params = [*(params if isinstance(params, list) else []), ["charset", "us-ascii"]]
    fields = [
        string(kind),
        string(subtype),
        _params(params),
        nstring(_str(node.get("id"))),
        nstring(_str(node.get("description"))),
        string(_token(node.get("encoding"), "7BIT")),
        number(_int(node.get("size"))),
    ]
    if (kind, subtype) == ("MESSAGE", "RFC822"):
        inner = inner if isinstance(inner, dict) else {}
        fields.append(render_envelope(inner.get("envelope")))
        fields.append(render_body(inner.get("body"), extensible=extensible, depth=depth + 1))
        fields.append(number(_int(node.get("lines"))))
    elif kind == "TEXT":
        fields.append(number(_int(node.get("lines"))))
    out = b"(" + b" ".join(fields)
    return out + (_extension(node, single=True) if extensible else b"") + b")"


def _has_charset(params: Any) -> bool:
    """Whether *params* has a usable charset (RFC 2045: text defaults to us-ascii)."""
    if not isinstance(params, list):
        return False
    return any(
        isinstance(p, list | tuple)
        and len(p) == 2
        and isinstance(p[0], str)
        and p[0].lower() == "charset"
        and isinstance(p[1], str)
        for p in params
    )


def fallback_tree(size: int, header_size: int) -> Node:
    """The body tree of a message with no usable cached parse: one text/plain part."""
    header_size = min(max(0, header_size), max(0, size))
    return {
        "section": "1",
        "type": "text",
        "subtype": "plain",
        "params": [["charset", "us-ascii"]],
        "encoding": "7BIT",
        "size": size - header_size,
        "lines": 0,
        "header_start": 0,
        "body_start": header_size,
        "body_end": size,
    }
