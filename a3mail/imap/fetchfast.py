"""A compiled renderer for the FETCH items mail clients ask for in bulk.

Clients sync with ``FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])`` and the like over
thousands of messages.  :func:`compile_fetch` turns such an item list, once per command, into
a function that renders one message's response with a few byte operations, skipping the
per-message item dispatch of :func:`a3mail.imap.fetchrender.render_fetch`.

It covers UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE, RFC822, RFC822.HEADER,
RFC822.TEXT and ``BODY[]``, ``BODY[HEADER]``, ``BODY[TEXT]`` (PEEK or not, no partial), for
messages whose file is in memory, as long as it has the indexed size (for the header items,
at least the header: a header sync reads only that) and a known header size.
Anything else (a section of a part, ENVELOPE, a short file) returns None: the caller then
uses ``render_fetch``, whose output this one matches byte for byte (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a3mail.imap import fetchspec as fs
from a3mail.imap.fetchrender import METADATA_ITEMS, render_metadata, response_items
from a3mail.imap.fetchspec import FetchItem, FetchSpec

#: Renders one message (record, sequence number, file bytes) or returns None.
FastRenderer = Callable[[Any, int, bytes | None], bytes | None]

# How to find an item's bytes: the whole message, its header, or its text.
_WHOLE, _HEADER, _TEXT = "whole", "header", "text"
_CONTENT_ITEMS = {
    fs.RFC822: (b"RFC822", _WHOLE),
    fs.RFC822_HEADER: (b"RFC822.HEADER", _HEADER),
    fs.RFC822_TEXT: (b"RFC822.TEXT", _TEXT),
}
_SECTION_TEXTS = {"": _WHOLE, fs.HEADER: _HEADER, fs.TEXT: _TEXT}


def compile_fetch(spec: FetchSpec, *, with_uid: bool, with_modseq: bool) -> FastRenderer | None:
    """A renderer for *spec* as ``render_fetch`` would answer it with the same flags (and
    ``include_flags=False``), or None if an item is not one this module covers."""
    plan: list[tuple[str, bytes]] = []
    for item in response_items(spec, with_uid, with_modseq):
        step = _step(item)
        if step is None:
            return None
        plan.append(step)
    needs_header = any(kind in (_HEADER, _TEXT) for kind, _ in plan)

    def render(msg: Any, seq: int, data: bytes | None) -> bytes | None:
        size = max(0, int(msg.size))
        header_size = int(msg.header_size or 0)
        if needs_header and not 0 < header_size <= size:
            return None  # render_fetch finds it in the parse or the file
        out = [b"* %d FETCH (" % seq]
        for index, (kind, label) in enumerate(plan):
            if index:
                out.append(b" ")
            if kind in METADATA_ITEMS:
                out.append(render_metadata(kind, msg, size))
            else:
                if data is None or (
                    len(data) < header_size if kind == _HEADER else len(data) != size
                ):
                    return None  # a missing or short file: render_fetch pads and logs
                start, end = (
                    (0, size)
                    if kind == _WHOLE
                    else (0, header_size)
                    if kind == _HEADER
                    else (header_size, size)
                )
                out.append(label)
                out.append(b" {%d}\r\n" % (end - start) if end > start else b' ""')
                if end > start:
                    out.append(data[start:end])
        out.append(b")\r\n")
        return b"".join(out)

    return render


def _step(item: FetchItem) -> tuple[str, bytes] | None:
    """(what to render, its label) for a covered item, else None."""
    if item.name in METADATA_ITEMS:
        return item.name, b""
    if item.name in _CONTENT_ITEMS:
        label, kind = _CONTENT_ITEMS[item.name]
        return kind, label
    section = item.section
    if item.name != fs.BODY_SECTION or section is None or item.partial is not None:
        return None
    if section.part or section.text not in _SECTION_TEXTS:
        return None
    return _SECTION_TEXTS[section.text], b"BODY[" + section.label() + b"]"
