"""Byte-level scanning of a stored message (``bytes`` or ``mmap``), no copies of bodies.

Line ends are CRLF normally, but a bare LF is accepted everywhere.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from typing import TypeAlias

import attrs

#: What the scanner reads: both support ``find``, slicing and regex search.
Buffer: TypeAlias = bytes | mmap.mmap

_BLANK_LINE = re.compile(rb"\n\r?\n")
_FIELD_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_DELIMITER_TAIL = re.compile(rb"(--)?[ \t]*(?:\r?\n|\Z)")
_CHUNK = 1 << 22


def header_end(buf: Buffer, start: int, end: int) -> int:
    """Where the body starts: just after the first blank line in ``[start, end)``.

    The header includes the blank line. With no blank line, everything is header.
    """
    if start >= end:
        return end
    if buf[start : start + 1] == b"\n":
        return start + 1
    if buf[start : start + 2] == b"\r\n":
        return start + 2
    m = _BLANK_LINE.search(buf, start, end)
    return m.end() if m is not None else end


def part_header_end(buf: Buffer, start: int, end: int) -> int:
    """Like :func:`header_end` for a MIME body part.

    A part whose first line does not look like a header field has no header
    (common in broken mail), so its body starts at ``start``.
    """
    if start >= end:
        return end
    if buf[start : start + 1] in (b"\n", b"\r") or _FIELD_START.match(buf, start, end):
        return header_end(buf, start, end)
    return start


def count_byte(buf: Buffer, byte: bytes, start: int, end: int) -> int:
    """How many times the single byte ``byte`` occurs in ``buf[start:end]``."""
    if end <= start:
        return 0
    if isinstance(buf, bytes):
        return buf.count(byte, start, end)
    total = 0
    for pos in range(start, end, _CHUNK):
        total += buf[pos : min(end, pos + _CHUNK)].count(byte)
    return total


def count_lines(buf: Buffer, start: int, end: int) -> int:
    """Number of lines in ``buf[start:end]``; an unterminated last line counts."""
    if end <= start:
        return 0
    lines = count_byte(buf, b"\n", start, end)
    if buf[end - 1 : end] != b"\n":
        lines += 1
    return lines


@attrs.frozen
class Delimiter:
    """One boundary delimiter line found in a multipart body."""

    #: Where the previous part ends: the CRLF before the boundary belongs to it.
    start: int
    #: Just after the delimiter line's line end: where the next part starts.
    line_end: int
    #: True for the close delimiter (``--boundary--``).
    close: bool


def iter_delimiters(buf: Buffer, start: int, end: int, boundary: bytes) -> Iterator[Delimiter]:
    """Yield the delimiter lines of ``boundary`` in ``[start, end)`` up to the close one.

    Per RFC 2046 a delimiter is ``--boundary`` at the start of a line, then
    ``--`` for the close delimiter, then optional white space and the line end.
    """
    dashes = b"--" + boundary
    pattern = b"\n" + dashes
    lo = start
    at_start = start + len(dashes) <= end and buf[start : start + len(dashes)] == dashes
    p = start if at_start else -1
    while True:
        if p < 0:
            found = buf.find(pattern, start, end)
            if found < 0:
                return
            p = found + 1
        pos = p + len(dashes)
        m = _DELIMITER_TAIL.match(buf, pos, end)
        if m is None:
            p = -1
            start = pos
            continue
        before = p
        if p - 2 >= lo and buf[p - 2 : p] == b"\r\n":
            before = p - 2
        elif p - 1 >= lo and buf[p - 1 : p] == b"\n":
            before = p - 1
        close = m.group(1) is not None
        yield Delimiter(before, m.end(), close)
        if close or m.end() >= end:
            return
        start = m.end() - 1
        p = -1
