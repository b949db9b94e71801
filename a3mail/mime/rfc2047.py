"""RFC 2047 encoded words (``=?charset?B|Q?text?=``) in header values."""

from __future__ import annotations

import re

from .charsets import clean, decode_bytes
from .decode import b64decode_tolerant
from .headers import MAX_PARSED_VALUE

_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?]*)\?=")
_QHEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _q_decode(text: str) -> bytes:
    raw = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QHEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _decode_word(m: re.Match[str]) -> tuple[str, bytes]:
    charset = m.group(1).split("*", 1)[0].lower()
    text = m.group(3)
    if m.group(2) in "Bb":
        return charset, b64decode_tolerant(text.encode("ascii", "ignore"))
    return charset, _q_decode(text)


def decode_words(value: str) -> str:
    """Decode the encoded words in ``value``; never raises.

    White space between adjacent encoded words is dropped, and adjacent words
    in the same charset are joined before decoding (so a character split over
    two words survives). Text that is not a well-formed encoded word is kept.
    Only the first ``MAX_PARSED_VALUE`` characters of a value with encoded
    words are looked at.
    """
    if "=?" not in value:
        return value
    value = value[:MAX_PARSED_VALUE]
    pieces: list[str | tuple[str, list[bytes]]] = []
    pos = 0
    prev_word = False
    for m in _WORD.finditer(value):
        literal = value[pos : m.start()]
        charset, data = _decode_word(m)
        if literal and not (prev_word and literal.strip(" \t\r\n") == ""):
            pieces.append(literal)
        last = pieces[-1] if pieces else None
        if isinstance(last, tuple) and last[0] == charset:
            last[1].append(data)
        else:
            pieces.append((charset, [data]))
        prev_word = True
        pos = m.end()
    pieces.append(value[pos:])
    out = [
        piece if isinstance(piece, str) else decode_bytes(b"".join(piece[1]), piece[0])
        for piece in pieces
    ]
    return clean("".join(out))
