"""Reading IMAP commands off the wire: lines, literals, limits.

:class:`CommandReader` buffers what the client sent and hands out one complete command
at a time (tag, name, argument bytes with literals inline), only when the session asks
for it, so commands run strictly one after another.  A synchronizing literal ``{n}`` is
answered with ``+`` only when the session is ready to read it and only if *n* is within
the limit (a refused literal is never read, so ``{4294967296}`` costs nothing); LITERAL+
``{n+}`` literals are read without asking.  Each message literal of an APPEND (several
with MULTIAPPEND) larger than ``spool_threshold`` goes straight into a file of its own (a
store blob writer), not memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

_LITERAL = re.compile(rb"\{(\d{1,20})(\+?)\}$")
_TAG = re.compile(rb"^[\x21-\x7e]+$")
LINE_TOO_LONG = object()


@attrs.frozen
class Spooled:
    """An APPEND literal written to a file while it arrived: the *index*-th literal of the
    command (from 0), its *size*, and the blob *writer* holding it."""

    index: int
    size: int
    writer: Any  # a3mail.store.blobs.BlobWriter


@attrs.define
class Command:
    """One complete command.  ``args`` holds literals inline (``{n}\\r\\n`` + bytes); a
    spooled APPEND literal appears there as ``{0}\\r\\n`` and is in ``spooled``."""

    tag: bytes
    name: bytes
    args: bytes
    spooled: list[Spooled] = attrs.field(factory=list)

    def take_spooled(self, index: int) -> Any:
        """The writer of the *index*-th literal if it was spooled (then it is the caller's
        to finish or abort), else None."""
        for entry in self.spooled:
            if entry.index == index:
                self.spooled.remove(entry)
                return entry.writer
        return None

    def abort_spooled(self) -> None:
        """Abort the writers nobody took (their files are removed)."""
        while self.spooled:
            self.spooled.pop().writer.abort()


@attrs.frozen
class Refusal:
    """A command that cannot be read: answer ``tag line``; *fatal* closes the session."""

    tag: bytes
    line: bytes
    fatal: bool = False


@attrs.define
class Limits:
    """The sizes a client controls."""

    max_line: int = 8192
    max_literal: int = 64 * 1024  # literals of commands other than APPEND
    max_append: int = 50 * 1024 * 1024
    max_command: int = 1024 * 1024  # all in-memory parts of one command
    spool_threshold: int = 64 * 1024


class CommandReader:
    """Buffers client bytes and assembles commands on demand."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.buffer = bytearray()
        self._skipping = False
        self._reset()

    def _reset(self) -> None:
        self._tag = b""
        self._name = b""
        self._parts: list[bytes] = []
        self._size = 0
        self._literal_left: int | None = None
        self._literals = 0  # literals of this command so far
        self._spooled: list[Spooled] = []
        self._spooling_now = False

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        self.buffer += data

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def in_command(self) -> bool:
        """True while part of a command has been read (e.g. waiting for a literal)."""
        return bool(self._parts)

    def discard(self) -> None:
        """Forget everything buffered (STARTTLS, end of session)."""
        self.buffer.clear()
        self.abort()

    def abort(self) -> None:
        """Drop the command being assembled (and its spool files)."""
        for entry in self._spooled:
            entry.writer.abort()
        self._reset()

    def next_line(self) -> bytes | object | None:
        """One raw line (IDLE's DONE, SASL responses), :data:`LINE_TOO_LONG`, or None."""
        while self._skipping:
            end = self.buffer.find(b"\n")
            if end < 0:
                self.buffer.clear()
                return None
            del self.buffer[: end + 1]
            self._skipping = False
        end = self.buffer.find(b"\n")
        if end < 0:
            if len(self.buffer) > self.limits.max_line:
                self.buffer.clear()
                self._skipping = True
                return LINE_TOO_LONG
            return None
        if end > self.limits.max_line:
            del self.buffer[: end + 1]
            return LINE_TOO_LONG
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def next_command(
        self, continuation: Callable[[], None], spool: Callable[[], Any]
    ) -> Command | Refusal | None:
        """The next complete command, a refusal, or None while more bytes are needed.

        *continuation* is called to send ``+`` for a synchronizing literal; *spool* makes
        the blob writer of a large APPEND literal.
        """
        while True:
            if self._literal_left is not None:
                if not self._read_literal():
                    return None
                continue
            line = self.next_line()
            if line is None:
                return None
            if line is LINE_TOO_LONG:
                tag = self._tag or b"*"
                self.abort()
                return Refusal(tag, b"BAD Command line too long")
            assert isinstance(line, bytes)
            if not self._parts:
                head = self._start(line)
                if isinstance(head, Refusal):
                    return head
                segment = head
            else:
                segment = line
            match = _LITERAL.search(segment)
            if match is None:
                self._parts.append(segment)
                command = Command(self._tag, self._name, b"".join(self._parts), self._spooled)
                self._spooled = []
                self._reset()
                return command
            refusal = self._start_literal(segment, match, continuation, spool)
            if refusal is not None:
                return refusal

    def _start(self, line: bytes) -> bytes | Refusal:
        tag, _, rest = line.partition(b" ")
        if not tag or not _TAG.match(tag) or b"{" in tag or b"+" in tag:
            return Refusal(b"*", b"BAD Missing or invalid tag")
        name, _, args = rest.partition(b" ")
        if not name:
            return Refusal(tag, b"BAD Missing command")
        upper = name.upper()
        if upper == b"UID":
            sub, _, args = args.partition(b" ")
            upper = b"UID " + sub.upper()
        self._tag, self._name = tag, upper
        return args if not _LITERAL.search(name) else b""

    def _start_literal(
        self,
        segment: bytes,
        match: re.Match[bytes],
        continuation: Callable[[], None],
        spool: Callable[[], Any],
    ) -> Refusal | None:
        size = int(match.group(1))
        synchronizing = not match.group(2)
        is_append = self._name == b"APPEND"
        spooling = is_append and size > self.limits.spool_threshold
        limit = self.limits.max_append if is_append else self.limits.max_literal
        in_memory = 0 if spooling else size
        tag = self._tag
        if size > limit or self._size + len(segment) + in_memory > self.limits.max_command:
            self.abort()
            if not synchronizing:
                return Refusal(tag, b"BAD [TOOBIG] Literal too large", fatal=True)
            return Refusal(tag, b"NO [TOOBIG] Literal too large")
        head = segment[: match.start()]
        if spooling:
            self._spooled.append(Spooled(self._literals, size, spool()))
            self._spooling_now = True
            self._parts.append(head + b"{0}\r\n")
        else:
            self._parts.append(head + b"{%d}\r\n" % size)
        self._literals += 1
        self._size += len(segment) + in_memory
        self._literal_left = size
        if synchronizing:
            continuation()
        return None

    def _read_literal(self) -> bool:
        """Move literal bytes from the buffer; True once the literal is complete."""
        left = self._literal_left
        assert left is not None
        if self._spooling_now:
            take = min(left, len(self.buffer))
            if take:
                self._spooled[-1].writer.write(bytes(self.buffer[:take]))
                del self.buffer[:take]
                left -= take
            self._literal_left = left
            if left:
                return False
            self._literal_left = None
            self._spooling_now = False
            return True
        if len(self.buffer) < left:
            return False
        self._parts.append(bytes(self.buffer[:left]))
        del self.buffer[:left]
        self._literal_left = None
        return True
