"""POP3 multi-line framing of stored messages (RFC 1939, section 3), chunk by chunk.

Messages are stored byte-exact with CRLF line ends and are sent as stored: nothing is
converted, so a CRLF stays a CRLF (never ``\\r\\r\\n``).  The only change is dot-stuffing:
a ``.`` that begins a line gets a second ``.`` in front of it, and the response ends with
``.CRLF`` on a line of its own.  Both filters keep their state across chunks, so a line
that begins exactly on a chunk boundary is stuffed like any other (Twisted's
``POP3.transformChunk`` forgets that and lets a ``.`` line there end the message early).

A line begins after every LF, also a bare LF, so that no client, strict or lenient about
line ends, can ever mistake a line of the message for the terminator.
"""

from __future__ import annotations

CRLF = b"\r\n"
TERMINATOR = b".\r\n"


class DotStuffer:
    """Dot-stuffs a message fed in chunks of any size; :meth:`end` gives the terminator."""

    def __init__(self) -> None:
        self.at_line_start = True
        self._tail = b""  # the last two bytes sent
        self.sent = 0  # bytes of the message fed (before stuffing)

    def feed(self, chunk: bytes) -> bytes:
        """The stuffed form of the next *chunk* of the message."""
        if not chunk:
            return b""
        out = chunk.replace(b"\n.", b"\n..")
        if self.at_line_start and chunk[:1] == b".":
            out = b"." + out
        self.at_line_start = chunk[-1:] == b"\n"
        self._tail = (self._tail + chunk)[-2:]
        self.sent += len(chunk)
        return out

    def end(self) -> bytes:
        """The terminator ``.CRLF``, first completing a last line that lacks its CRLF (a
        trailing lone CR gets just the LF, so the output never holds ``\r\r\n``)."""
        if self.sent == 0 or self._tail == CRLF:
            return TERMINATOR
        if self._tail.endswith(b"\r"):
            return b"\n" + TERMINATOR
        return CRLF + TERMINATOR


class TopFilter:
    """The part of a message TOP sends: the header, the blank line, then *lines* body lines.

    Fed the message in chunks, it returns the (not yet stuffed) bytes to send;
    :attr:`done` turns true once everything wanted has been returned.  A message without
    a blank line is all header and is sent whole.  An empty line is ``CRLF`` or a bare LF.
    """

    def __init__(self, lines: int) -> None:
        self.lines_left = lines
        self.in_header = True
        self.done = False
        self._line_length = 0  # bytes of the current, unfinished line seen so far
        self._line_starts_cr = False

    def feed(self, chunk: bytes) -> bytes:
        """The wanted part of the next *chunk* (empty once :attr:`done`)."""
        if self.done:
            return b""
        pos, size = 0, len(chunk)
        while pos < size:
            if not self.in_header and self._line_length == 0:  # a body line starts here
                if self.lines_left <= 0:
                    self.done = True
                    break
                self.lines_left -= 1
            newline = chunk.find(b"\n", pos)
            if newline < 0:
                if self._line_length == 0:
                    self._line_starts_cr = chunk[pos : pos + 1] == b"\r"
                self._line_length += size - pos
                pos = size
                break
            if self.in_header and self._is_empty_line(chunk, pos, newline):
                self.in_header = False
            self._line_length = 0
            pos = newline + 1
        if not self.in_header and self._line_length == 0 and self.lines_left <= 0:
            self.done = True
        return chunk[:pos]

    def _is_empty_line(self, chunk: bytes, pos: int, newline: int) -> bool:
        length = self._line_length + newline - pos
        if length == 0:
            return True
        if length != 1:
            return False
        return chunk[pos:newline] == b"\r" if self._line_length == 0 else self._line_starts_cr
