"""The entry point: parse a stored message once into a :class:`ParsedMessage`."""

from __future__ import annotations

import logging
import mmap
import re
from typing import Any

from .addresses import decoded_addresses, parse_addresses
from .codes import extract_verification_code
from .content import extract_content
from .envelope import build_envelope, message_id, parse_date
from .headers import Headers
from .model import ParsedMessage
from .rfc2047 import decode_words
from .scan import Buffer, header_end
from .structure import parse_tree

PREVIEW_CHARS = 200
#: At most this many header fields, each value cut to MAX_SEARCH_HEADER_CHARS, are kept
#: decoded in ``ParsedMessage.headers`` for searching.
MAX_SEARCH_HEADERS = 200
MAX_SEARCH_HEADER_CHARS = 4000
_log = logging.getLogger(__name__)
_SPACE = re.compile(r"\s+")


def _buffer(data: bytes | bytearray | mmap.mmap | memoryview) -> Buffer:
    """``data`` as something the scanner reads (bytes and mmap are used as they are)."""
    try:
        if isinstance(data, bytes | mmap.mmap):
            len(data)  # a closed mmap raises here
            return data
        return bytes(data)
    except Exception:
        _log.exception("unreadable message buffer %r", type(data))
        return b""


def preview(text: str, chars: int = PREVIEW_CHARS) -> str:
    """The first ``chars`` characters of ``text`` with white space collapsed."""
    return _SPACE.sub(" ", text[: chars * 8]).strip()[:chars]


def search_headers(headers: Headers) -> list[list[str]]:
    """The header fields as ``[name, decoded value]`` pairs, capped (see MAX_SEARCH_HEADERS)."""
    return [
        [name, decode_words(value[:MAX_SEARCH_HEADER_CHARS])]
        for name, value in headers.fields[:MAX_SEARCH_HEADERS]
    ]


def _build(buf: Buffer, max_text_chars: int, max_parts: int, max_depth: int) -> ParsedMessage:
    headers, body = parse_tree(buf, max_parts, max_depth)
    envelope = build_envelope(headers)
    content = extract_content(buf, body, max_text_chars)
    subject = decode_words(headers.get("subject") or "")
    code = extract_verification_code(subject, content.text, content.html_text)
    return ParsedMessage(
        size=len(buf),
        header_size=body["body_start"],
        envelope=envelope,
        body=body,
        subject=subject,
        from_=decoded_addresses(envelope["from"]),
        to=decoded_addresses(envelope["to"]),
        cc=decoded_addresses(envelope["cc"]),
        reply_to=decoded_addresses(parse_addresses(headers.get("reply-to"))),
        date=parse_date(headers.get("date")),
        message_id=message_id(headers.get("message-id")),
        text=content.text,
        html=content.html,
        preview=preview(content.text),
        attachments=content.attachments,
        verification_code=code,
        headers=search_headers(headers),
    )


def _fallback(buf: Buffer) -> ParsedMessage:
    """The least we can say about a message that defeated the parser."""
    size = len(buf)
    try:
        header_size = header_end(buf, 0, size)
    except Exception:
        header_size = size
    body: dict[str, Any] = {
        "section": "1",
        "type": "text",
        "subtype": "plain",
        "params": [["charset", "us-ascii"]],
        "id": None,
        "description": None,
        "encoding": "7BIT",
        "size": size - header_size,
        "lines": None,
        "md5": None,
        "disposition": None,
        "language": None,
        "location": None,
        "header_start": 0,
        "body_start": header_size,
        "body_end": size,
    }
    return ParsedMessage(
        size=size,
        header_size=header_size,
        envelope=build_envelope(Headers([])),
        body=body,
        subject="",
        from_=[],
        to=[],
        cc=[],
        reply_to=[],
        date=None,
        message_id=None,
        text="",
        html="",
        preview="",
        attachments=[],
        verification_code=None,
    )


def parse_message(
    data: bytes | bytearray | mmap.mmap | memoryview,
    *,
    max_text_chars: int = 1_000_000,
    max_parts: int = 2000,
    max_depth: int = 40,
) -> ParsedMessage:
    """Parse a complete stored message; never raises, degrades to what it can read.

    ``data`` is the raw message (CRLF line ends, bare LF tolerated). ``text``
    and ``html`` are cut at ``max_text_chars``; a container part nested deeper
    than ``max_depth``, or found after ``max_parts`` parts, is kept as an opaque
    application/octet-stream part.
    """
    buf = _buffer(data)
    try:
        return _build(buf, max(0, max_text_chars), max_parts, max_depth)
    except Exception:
        _log.exception("MIME parser failed on a %d-byte message; using a minimal result", len(buf))
        return _fallback(buf)
