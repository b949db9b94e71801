"""What readers want from the tree: the text, the HTML and the list of attachments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .decode import decoded_size, param, part_text
from .htmltext import html_to_text
from .rfc2047 import decode_words
from .scan import Buffer

Node = dict[str, Any]


@attrs.frozen
class Content:
    """The readable content of a message."""

    #: Inline text/plain parts joined with "\n", else the HTML rendered as text.
    text: str
    #: The first inline text/html part, decoded.
    html: str
    #: ``html`` rendered as plain text ("" when there is no HTML).
    html_text: str
    #: One dict per attachment, see :func:`attachment_info`.
    attachments: list[dict[str, Any]]


def _leaves(node: Node) -> Iterator[Node]:
    """Leaf parts in order; a message/rfc822 part is a leaf (not entered)."""
    children = node.get("children")
    if children:
        for child in children:
            yield from _leaves(child)
    else:
        yield node


def filename(node: Node) -> str | None:
    """The decoded file name of a part (Content-Disposition, else Content-Type name)."""
    disposition = node.get("disposition")
    name = param(disposition[1], "filename") if disposition else None
    if not name:
        name = param(node["params"], "name")
    if not name:
        return None
    return decode_words(name).strip() or None


def _is_attachment(node: Node, is_root: bool, name: str | None) -> bool:
    disposition = node.get("disposition")
    if disposition and disposition[0] == "attachment":
        return True
    if name is not None:
        return True
    return node["type"] != "text" and not is_root


def attachment_info(buf: Buffer, node: Node, name: str | None) -> dict[str, Any]:
    """``{"section", "filename", "content_type", "size", "content_id", "disposition"}``.

    ``size`` is the decoded size where it is cheap to know (identity encodings
    and base64), the encoded octets otherwise (see :func:`decoded_size`).
    ``content_id`` has its angle brackets removed.
    """
    disposition = node.get("disposition")
    cid = node.get("id")
    if cid:
        cid = cid.strip().strip("<>").strip() or None
    return {
        "section": node["section"],
        "filename": name,
        "content_type": f"{node['type']}/{node['subtype']}",
        "size": decoded_size(buf, node),
        "content_id": cid,
        "disposition": "inline" if disposition and disposition[0] == "inline" else "attachment",
    }


def extract_content(buf: Buffer, root: Node, max_chars: int) -> Content:
    """Decode the text and HTML bodies and list the attachments under ``root``."""
    texts: list[str] = []
    budget = max_chars
    html_body: str | None = None
    attachments: list[dict[str, Any]] = []
    single = not root.get("children")
    for leaf in _leaves(root):
        name = filename(leaf)
        if _is_attachment(leaf, single, name):
            attachments.append(attachment_info(buf, leaf, name))
            continue
        if leaf["type"] != "text":
            continue
        if leaf["subtype"] == "plain" and budget > 0:
            text = part_text(buf, leaf, budget)
            texts.append(text)
            budget -= len(text) + 1
        elif leaf["subtype"] == "html" and html_body is None:
            html_body = part_text(buf, leaf, max_chars)
    html_body = html_body or ""
    html_text = html_to_text(html_body) if html_body else ""
    text = "\n".join(texts)
    if not text.strip():
        text = html_text
    return Content(text[:max_chars], html_body, html_text[:max_chars], attachments)
