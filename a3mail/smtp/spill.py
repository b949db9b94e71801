"""Where DATA goes: memory for a small message, a spool file once it grows.

Most mail is small.  A message of at most :data:`MEMORY_LIMIT` bytes (trace headers
included) is held in memory while it arrives and written, fsynced and parsed in ONE
worker-thread hand-off when its data ends (:meth:`~a3mail.store.spool.Spool.store_bytes`):
no hand-off to create the file before ``354``, no file left behind by a client that goes
away mid-message.  Past the limit the sink opens a spool file (in a worker thread), writes
what it holds, and streams the rest into the file, so a large message is never held in
memory: at most the limit plus what arrives during that one hand-off.

Durability is unchanged: :meth:`SpillingSink.finish` returns only once the file is written
and (unless *scratch*) fsynced, exactly as :meth:`~a3mail.store.spool.Spool.finish`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from a3mail.store import Store
from a3mail.store.blobs import BlobWriter, IncomingBlob
from a3mail.store.messages import Parser

#: A message up to this size (bytes) stays in memory until its data ends.
MEMORY_LIMIT = 64 * 1024


class SpillingSink:
    """A :class:`~a3mail.smtp.data.Sink` in memory up to *limit* bytes, then a spool file.

    *prefix* (the trace headers) is the start of the message; *scratch*: the file is only
    an input for verification (not fsynced), as for :meth:`Spool.open_writer`.
    """

    def __init__(
        self, store: Store, prefix: bytes, *, scratch: bool, limit: int | None = None
    ) -> None:
        self.store = store
        self.scratch = scratch
        self.limit = MEMORY_LIMIT if limit is None else limit
        self.writer: BlobWriter | None = None
        self._buffer = bytearray(prefix)
        self._opening: Deferred[Any] | None = None
        self._error: BaseException | None = None
        self._aborted = False

    @property
    def spilled(self) -> bool:
        """True once the message is (being) written to a file."""
        return self._opening is not None

    def write(self, data: bytes) -> None:
        """Append bytes (to memory, or to the file once there is one)."""
        if self.writer is not None:
            self.writer.write(data)
            return
        self._buffer += data
        if self._opening is None and len(self._buffer) > self.limit:
            self._opening = self.store.spool.open_writer(b"", scratch=self.scratch)
            self._opening.addCallbacks(self._opened, self._open_failed)

    def _opened(self, writer: BlobWriter) -> None:
        if self._aborted:
            writer.abort()
            return
        try:
            writer.write(bytes(self._buffer))
        except OSError as e:  # e.g. disk full: the message is refused at its end
            self._error = e
            writer.abort()
            return
        self._buffer = bytearray()
        self.writer = writer

    def _open_failed(self, failure: Failure) -> None:
        self._error = failure.value

    async def finish(self, parser: Parser | None) -> tuple[IncomingBlob, Any]:
        """The message as an incoming file, fsynced unless scratch, and its parse (or None
        without *parser*).  Raises the OSError of a failed file operation."""
        if self._opening is not None:
            await self._opening
        if self._error is not None:
            raise self._error
        if self.writer is not None:
            writer, self.writer = self.writer, None
            return await self.store.spool.finish(writer, parser)
        data, self._buffer = bytes(self._buffer), bytearray()
        return await self.store.spool.store_bytes(data, scratch=self.scratch, parser=parser)

    def abort(self) -> None:
        """Drop the message: free the memory, remove the file if there is one."""
        self._aborted = True
        self._buffer = bytearray()
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.abort()
