"""The DATA receiver: message lines streamed to a file until ``CRLF.CRLF``.

Only a line that is exactly ``.`` (between two CRLFs) ends the data: a bare LF or CR is
ordinary data, so ``\\n.\\n``, ``\\r.\\n`` and ``\\n.\\r\\n`` never end a message (no SMTP
smuggling).  Dot-stuffing is undone.  Past the size limit nothing more is written; a line
longer than the limit is dropped and remembered; either way the receiver keeps consuming
until the real end of data, and the caller refuses the message then.  Nothing but the
current partial line is ever held in memory.

While in the header section, ``Authentication-Results`` fields carrying our own
authserv-id (forged by the sender) are dropped (direct mode) or their byte ranges recorded
so the final file is assembled without them (scratch mode); ``Received`` fields are
counted for loop detection.
"""

from __future__ import annotations

from typing import Protocol

import attrs

_CRLF = b"\r\n"
_AUTH_RESULTS = b"authentication-results"
_RECEIVED = b"received"


class Sink(Protocol):
    """Where message bytes go (a BlobWriter)."""

    def write(self, data: bytes) -> None:
        """Append bytes."""


@attrs.frozen
class DataResult:
    """What the receiver saw once the data ended."""

    size: int
    too_big: bool
    line_too_long: bool
    write_failed: bool
    hops: int
    forged_ranges: tuple[tuple[int, int], ...]


class DataReceiver:
    """Consumes message data from an input buffer and writes it to *sink*.

    *offset*: bytes already in the sink (trace headers written first), so that recorded
    ranges are file offsets.  *drop_forged*: drop forged Authentication-Results lines
    instead of recording their ranges.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        max_size: int,
        max_line: int,
        authserv_id: str,
        drop_forged: bool,
        offset: int = 0,
    ) -> None:
        self.sink = sink
        self.max_size = max_size
        self.max_line = max_line
        self.authserv_id = authserv_id.lower().encode()
        self.drop_forged = drop_forged
        self.offset = offset
        self.size = 0  # message bytes received (after un-stuffing)
        self.too_big = False
        self.line_too_long = False
        self.hops = 0
        self.write_failed = False
        self._skipping = False  # inside an overlong line: drop until CRLF
        self._in_headers = True
        self._forged = False  # the current header field is a forged A-R
        self._forged_start = 0
        self._ranges: list[tuple[int, int]] = []
        self.done = False

    def feed(self, buffer: bytearray) -> bool:
        """Consume what can be consumed from *buffer* (removing it); True at end of data.

        A partial last line stays in *buffer* unless it is already too long.
        """
        view = bytes(buffer)
        pos = 0
        try:
            while pos < len(view):
                if self._skipping:  # drop the rest of an overlong line
                    idx = view.find(_CRLF, pos)
                    if idx < 0:  # keep a trailing CR: it may start the CRLF
                        stop = len(view) - 1 if view.endswith(b"\r") else len(view)
                        self.size += max(0, stop - pos)
                        pos = max(pos, stop)
                        return False
                    self.size += idx + 2 - pos
                    pos = idx + 2
                    self._skipping = False
                    continue
                if not self._in_headers and view[pos] != 0x2E:  # not "."
                    stop = self._body_lines_end(view, pos)
                    if stop > pos:
                        self._write_lines(view[pos:stop])
                        pos = stop
                        continue
                idx = view.find(_CRLF, pos)
                if idx < 0:
                    if len(view) - pos > self.max_line + 1:
                        self._overlong(0)
                        self._skipping = True
                        continue
                    return False
                line = view[pos:idx]
                pos = idx + 2
                if line[:1] == b".":
                    if len(line) == 1:
                        self._end_header_field()
                        self.done = True
                        return True
                    line = line[1:]
                if len(line) > self.max_line:
                    self._overlong(len(line) + 2)
                    continue
                self._line(line)
            return False
        finally:
            del buffer[:pos]

    @staticmethod
    def _body_lines_end(view: bytes, pos: int) -> int:
        """Where the complete body lines starting at *pos* end: before the next line that
        starts with a dot, else after the last CRLF (*pos* if there is no complete line)."""
        dot = view.find(b"\r\n.", pos)
        if dot >= 0:
            return dot + 2
        last = view.rfind(_CRLF, pos)
        return last + 2 if last >= 0 else pos

    def _write_lines(self, chunk: bytes) -> None:
        """Write complete lines (none starting with a dot), dropping overlong ones."""
        if len(chunk) > self.max_line + 2 and max(map(len, chunk.split(_CRLF))) > self.max_line:
            for line in chunk[:-2].split(_CRLF):
                if len(line) > self.max_line:
                    self._overlong(len(line) + 2)
                else:
                    self._write(line + _CRLF)
        else:
            self._write(chunk)

    def _line(self, line: bytes) -> None:
        if self._in_headers:
            if not line:
                self._end_header_field()
                self._in_headers = False
            elif line[:1] in (b" ", b"\t"):
                if self._forged and self.drop_forged:
                    return
            else:
                self._end_header_field()
                name, colon, value = line.partition(b":")
                name = name.strip().lower()
                if colon and name == _RECEIVED:
                    self.hops += 1
                elif colon and name == _AUTH_RESULTS and self._is_ours(value):
                    self._forged = True
                    self._forged_start = self.offset + self.size
                    if self.drop_forged:
                        return
        self._write(line + _CRLF)

    def _is_ours(self, value: bytes) -> bool:
        authserv = value.split(b";", 1)[0].strip().split(None, 1)
        return bool(authserv) and authserv[0].lower() == self.authserv_id

    def _end_header_field(self) -> None:
        if self._forged:
            self._forged = False
            if not self.drop_forged:
                self._ranges.append((self._forged_start, self.offset + self.size))

    def _write(self, data: bytes) -> None:
        if self.too_big or self.line_too_long or self.write_failed:
            self.size += len(data)
            return
        if self.size + len(data) > self.max_size:
            self.too_big = True
            self.size += len(data)
            return
        try:
            self.sink.write(data)
        except OSError:  # e.g. disk full: keep consuming, refuse the message at its end
            self.write_failed = True
        self.size += len(data)

    def _overlong(self, length: int) -> None:
        self.line_too_long = True
        self.size += length

    def result(self) -> DataResult:
        """The outcome (call once :meth:`feed` returned True)."""
        return DataResult(
            size=self.size,
            too_big=self.too_big or self.size > self.max_size,
            line_too_long=self.line_too_long,
            write_failed=self.write_failed,
            hops=self.hops,
            forged_ranges=tuple(self._ranges),
        )
