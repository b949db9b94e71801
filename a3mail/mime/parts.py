"""One part of a stored message, found by its IMAP section in the cached body structure.

The parse cached at delivery (``parsed["body"]``) keeps each part's absolute byte offsets
(``body_start``, ``body_end``) in the stored message, so a part is decoded from those bytes
without parsing the message again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .decode import decode_transfer

Node = dict[str, Any]


def _nodes(node: Node) -> Iterator[Node]:
    """*node* and every part under it (multipart children and message/rfc822 bodies)."""
    yield node
    for child in node.get("children") or ():
        if isinstance(child, dict):
            yield from _nodes(child)
    inner = node.get("message")
    if isinstance(inner, dict) and isinstance(inner.get("body"), dict):
        yield from _nodes(inner["body"])


def find_part(body: Any, section: str) -> Node | None:
    """The leaf part numbered *section* in the cached body structure, or None."""
    if not isinstance(body, dict) or not section:
        return None
    for node in _nodes(body):
        if node.get("section") == section and not node.get("children"):
            return node
    return None


def part_bytes(message: bytes, node: Node) -> bytes:
    """The decoded content of one leaf part (Content-Transfer-Encoding undone)."""
    start, end = int(node["body_start"]), int(node["body_end"])
    if not 0 <= start <= end <= len(message):
        return b""
    return decode_transfer(message[start:end], str(node.get("encoding") or "7BIT").upper())
