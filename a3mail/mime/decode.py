"""Content-Transfer-Encodings (base64, quoted-printable, identity) and part text."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .charsets import decode_bytes
from .scan import Buffer, count_byte

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_NEWLINES = re.compile(r"\r\n?")


def b64decode_tolerant(data: bytes) -> bytes:
    """Decode base64, ignoring junk characters, bad padding and padding in the middle."""
    clean = data.translate(None, _B64_JUNK)
    out = []
    for segment in clean.split(b"="):
        if not segment:
            continue
        extra = len(segment) % 4
        if extra == 1:
            segment = segment[:-1]
        elif extra:
            segment += b"=" * (4 - extra)
        try:
            out.append(base64.b64decode(segment))
        except (binascii.Error, ValueError):
            continue
    return b"".join(out)


def qp_decode(data: bytes) -> bytes:
    """Decode quoted-printable; malformed escapes are kept as they are."""
    try:
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return data


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo the Content-Transfer-Encoding ``encoding`` (uppercase) of ``data``."""
    if encoding == "BASE64":
        return b64decode_tolerant(data)
    if encoding == "QUOTED-PRINTABLE":
        return qp_decode(data)
    return data


def param(params: list[list[str]], name: str) -> str | None:
    """The value of the first parameter ``name`` (lowercase) in ``params``."""
    for key, value in params:
        if key == name:
            return value
    return None


def part_text(buf: Buffer, node: dict[str, Any], max_chars: int) -> str:
    """The decoded text of a leaf part, newlines normalised to ``\\n``.

    At most enough raw bytes for ``max_chars`` characters are read, so a huge
    part costs no more than a small one.
    """
    start, end = node["body_start"], node["body_end"]
    end = min(end, start + max(max_chars, 1) * 12 + 16)
    data = decode_transfer(bytes(buf[start:end]), node["encoding"])
    text = decode_bytes(data, param(node["params"], "charset"))
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    return text[:max_chars]


def decoded_size(buf: Buffer, node: dict[str, Any]) -> int:
    """The decoded size of a leaf part when cheap to know, else its encoded size.

    Exact for 7bit/8bit/binary; computed from the length for base64 (exact for
    well-formed base64 with CRLF/LF line breaks); the encoded octets otherwise.
    """
    start, end = node["body_start"], node["body_end"]
    size = end - start
    if node["encoding"] != "BASE64" or size <= 0:
        return size
    chars = size - count_byte(buf, b"\n", start, end) - count_byte(buf, b"\r", start, end)
    tail = bytes(buf[max(start, end - 8) : end]).rstrip()
    pad = len(tail) - len(tail.rstrip(b"="))
    return max(0, chars * 3 // 4 - min(pad, 2))
