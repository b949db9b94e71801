"""Reading POP3 command lines: framing, length limit, pipelining queue, argument parsing.

:class:`CommandQueue` turns received bytes into complete lines in order, replaces a line
longer than the limit by :data:`LINE_TOO_LONG` (its bytes are dropped as they arrive, so a
client cannot make the server buffer more than the limit), and lets the protocol drop
everything still unread at once (after STLS: nothing sent in plaintext may run in TLS).
"""

from __future__ import annotations

import collections

# Stands in the queue for a line that exceeded the limit.
LINE_TOO_LONG = object()

Item = bytes | object


class CommandQueue:
    """Complete command lines (CR LF or a bare LF ends a line) waiting to be handled."""

    def __init__(self, max_line_length: int) -> None:
        self.max_line_length = max_line_length
        self._lines: collections.deque[Item] = collections.deque()
        self._partial = b""
        self._skipping = False  # inside an overlong line, dropping bytes up to its LF

    def __len__(self) -> int:
        return len(self._lines)

    def feed(self, data: bytes) -> None:
        """Add received bytes; complete lines join the queue."""
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            if self._skipping:
                self._skipping = False
                self._lines.append(LINE_TOO_LONG)
            else:
                line = self._partial + data[start:newline]
                self._partial = b""
                if line.endswith(b"\r"):
                    line = line[:-1]
                # CR LF is not counted against the limit.
                self._lines.append(LINE_TOO_LONG if len(line) > self.max_line_length else line)
            start = newline + 1
        if not self._skipping:
            self._partial += data[start:]
            if len(self._partial) > self.max_line_length + 1:  # room for the CR
                self._partial = b""
                self._skipping = True

    def pop(self) -> Item | None:
        """The next line (or :data:`LINE_TOO_LONG`), or None if none is complete."""
        return self._lines.popleft() if self._lines else None

    def discard(self) -> None:
        """Forget every queued line and any partial line."""
        self._lines.clear()
        self._partial = b""
        self._skipping = False


def split_command(line: bytes) -> tuple[bytes, bytes]:
    """(upper-cased keyword, the rest of the line after one space)."""
    keyword, _, rest = line.partition(b" ")
    return keyword.upper(), rest


def message_number(arg: bytes) -> int | None:
    """A message number (decimal digits only, at most 10), else None."""
    if not arg.isdigit() or len(arg) > 10:
        return None
    return int(arg)
