"""CHUNKING (RFC 3030): ``BDAT size [LAST]`` chunks of exact byte counts.

A chunk's bytes are taken from the input by count, never parsed as commands, and fed to
the same :class:`~a3mail.smtp.data.DataReceiver` as DATA (size and line limits, forged
Authentication-Results, hop count), after dot-stuffing them: the receiver then undoes the
stuffing, so the stored bytes are exactly the client's, and a ``.`` line inside a chunk
can never end the message.  The LAST chunk ends the data (a message whose last line lacks
its CRLF gets one).
"""

from __future__ import annotations

import re

from a3mail.smtp.data import DataReceiver

_ARGUMENT = re.compile(rb"(\d{1,15})(?: +(LAST))?", re.IGNORECASE)


def parse_bdat(rest: bytes) -> tuple[int, bool] | None:
    """``size [LAST]`` -> (size, last); None for anything else."""
    match = _ARGUMENT.fullmatch(rest)
    if match is None:
        return None
    return int(match[1]), match[2] is not None


class ChunkedMessage:
    """The chunks of one BDAT transaction, on their way into a DataReceiver."""

    def __init__(self, receiver: DataReceiver) -> None:
        self.receiver = receiver
        self.received = 0
        self._tail = b"\r\n"  # the last two bytes seen; the message starts a line
        self._buffer = bytearray()  # stuffed bytes the receiver has not taken yet

    def add(self, piece: bytes) -> None:
        """Bytes of a chunk, as the client sent them."""
        self.received += len(piece)
        data = self._tail + piece
        # A "." after CRLF is doubled; the two bytes of the tail catch a CRLF split
        # between two pieces and add nothing before the piece itself.
        self._buffer += data.replace(b"\r\n.", b"\r\n..")[len(self._tail) :]
        self._tail = data[-2:]
        self.receiver.feed(self._buffer)

    def end(self) -> None:
        """The LAST chunk is in: end the data for the receiver."""
        ending = b".\r\n" if self._tail == b"\r\n" else b"\r\n.\r\n"
        self._buffer += ending
        done = self.receiver.feed(self._buffer)
        assert done, "a stuffed message always ends at its terminator"
