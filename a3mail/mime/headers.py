"""RFC 5322 header blocks: split into fields, unfold, turn raw bytes into ``str``.

Raw header bytes are decoded as UTF-8 when they are valid UTF-8 (RFC 6532) and
as latin-1 otherwise, per field value. latin-1 maps every byte to one code
point, so nothing is lost and the result is always JSON-serialisable.
"""

from __future__ import annotations

import re

from .charsets import clean

#: Longest header value that is parsed further (addresses, parameters, encoded
#: words); the rest of a longer (hostile) value is ignored by those parsers.
MAX_PARSED_VALUE = 256 * 1024

_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def header_str(raw: bytes) -> str:
    """Decode raw header bytes: UTF-8 when valid, else latin-1 (never raises)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return clean(text)


def is_field_line(line: bytes) -> bool:
    """True if ``line`` starts like a header field (``name:``)."""
    return _FIELD.match(line) is not None


class Headers:
    """The fields of one header block, in order, with case-insensitive lookup.

    Values are unfolded (CRLF before white space removed), stripped, and not
    RFC 2047 decoded.
    """

    __slots__ = ("_first", "fields")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        """Wrap ``(lowercased name, value)`` pairs."""
        self.fields = fields
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name, value)

    def get(self, name: str) -> str | None:
        """The value of the first field called ``name`` (any case), or None."""
        return self._first.get(name.lower())

    def get_all(self, name: str) -> list[str]:
        """The values of all fields called ``name`` (any case), in order."""
        lname = name.lower()
        return [value for fname, value in self.fields if fname == lname]

    def __len__(self) -> int:
        """Number of fields."""
        return len(self.fields)


def _value(parts: list[bytes]) -> str:
    return header_str(b"".join(parts).strip())


def parse_headers(raw: bytes) -> Headers:
    """Parse a header block (the blank line may be included).

    Lines that are neither a field nor a continuation (an mbox ``From`` line,
    garbage) are skipped; a continuation line with no field before it is ignored.
    """
    fields: list[tuple[str, str]] = []
    name: str | None = None
    parts: list[bytes] = []
    for line in raw.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                parts.append(line)
            continue
        if name is not None:
            fields.append((name, _value(parts)))
            name = None
        m = _FIELD.match(line)
        if m is not None:
            name = m.group(1).decode("ascii").lower()
            parts = [line[m.end() :]]
    if name is not None:
        fields.append((name, _value(parts)))
    return Headers(fields)
