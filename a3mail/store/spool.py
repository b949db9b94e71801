"""Incoming message files between the protocol and delivery (all under ``mail/tmp``).

A front streams a message into a writer from :meth:`Spool.open_writer` and finishes it with
:meth:`Spool.finish` (fsync and MIME parse in one worker-thread hand-off).  A front that must
read a message back before it knows the headers to prepend (SMTP adds an
Authentication-Results header computed over the received bytes) writes the body to a
*scratch* file (not fsynced: it is only an input), reads it, then :meth:`Spool.assemble`
writes the final file, prefix + body copied in the kernel (``os.copy_file_range``, or
``sendfile``), fsyncs and parses it, and removes the scratch file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from a3mail.store.blobs import BlobWriter, IncomingBlob, unique_name
from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.messages import Parser

_COPY_CHUNK = 1 << 20


class Spool:
    """Incoming files: opening writers, finishing (fsync + parse), assembling, reading and
    removing them.  File work runs in worker threads, never in the reactor thread."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def open_writer(self, prefix: bytes = b"", *, scratch: bool = False) -> BlobWriter:
        """A new writer under ``mail/tmp`` holding *prefix*.  A *scratch* writer's file is
        only an input (for verification): :meth:`~BlobWriter.finish` does not fsync it."""
        return await self.ctx.in_thread(self._open_writer, prefix, scratch)

    def _open_writer(self, prefix: bytes, scratch: bool) -> BlobWriter:
        if scratch:
            writer = BlobWriter(self.ctx.blobs.tmp / f"scratch-{unique_name()}", fsync=False)
        else:
            writer = self.ctx.blobs.writer()
        if prefix:
            writer.write(prefix)
        return writer

    @deferred
    async def finish(
        self, writer: BlobWriter, parser: Parser | None = None
    ) -> tuple[IncomingBlob, Any]:
        """Close the writer (fsynced unless scratch) and, given *parser*, parse the file:
        one worker-thread hand-off.  Returns the blob and the parse (or None)."""
        return await self.ctx.in_thread(self._finish, writer, parser)

    def _finish(self, writer: BlobWriter, parser: Parser | None) -> tuple[IncomingBlob, Any]:
        try:
            blob = writer.finish()
        except BaseException:
            writer.abort()
            raise
        parsed = None if parser is None else self.ctx.blobs.parse_file(blob.path, parser)
        return blob, parsed

    @deferred
    async def store_bytes(
        self, data: bytes, *, scratch: bool = False, parser: Parser | None = None
    ) -> tuple[IncomingBlob, Any]:
        """Write a message held in memory into a new incoming file (fsynced unless
        *scratch*) and parse it with *parser* if given: ONE worker-thread hand-off, the
        same result as :meth:`open_writer` + write + :meth:`finish`."""
        return await self.ctx.in_thread(self._store_bytes, data, scratch, parser)

    def _store_bytes(
        self, data: bytes, scratch: bool, parser: Parser | None
    ) -> tuple[IncomingBlob, Any]:
        writer = self._open_writer(b"", scratch)
        try:
            writer.write(data)
            blob = writer.finish()
        except BaseException:
            writer.abort()
            raise
        return blob, None if parser is None else parser(data)  # parsed from memory

    @deferred
    async def assemble(
        self,
        prefix: bytes,
        scratch: IncomingBlob,
        skip: Sequence[tuple[int, int]] = (),
        parser: Parser | None = None,
    ) -> tuple[IncomingBlob, Any]:
        """Write *prefix* then the scratch file's bytes (minus the *skip* ranges, sorted
        ``(start, end)`` offsets) into a new fsynced incoming file, remove the scratch file,
        and parse the result with *parser* if given.  Returns the blob and the parse."""
        return await self.ctx.in_thread(self._assemble, prefix, scratch, list(skip), parser)

    def _assemble(
        self,
        prefix: bytes,
        scratch: IncomingBlob,
        skip: list[tuple[int, int]],
        parser: Parser | None,
    ) -> tuple[IncomingBlob, Any]:
        self._check(scratch.path)
        writer = self.ctx.blobs.writer()
        try:
            writer.write(prefix)
            file = writer._file
            assert file is not None
            file.flush()
            with open(scratch.path, "rb") as source:
                position = 0
                for start, end in [*skip, (scratch.size, scratch.size)]:
                    _copy(source.fileno(), file.fileno(), position, start - position)
                    position = max(position, end)
            writer.size += scratch.size - sum(end - start for start, end in skip)
            blob = writer.finish()
        except BaseException:
            writer.abort()
            raise
        scratch.path.unlink(missing_ok=True)
        parsed = None if parser is None else self.ctx.blobs.parse_file(blob.path, parser)
        return blob, parsed

    @deferred
    async def read(self, blob: IncomingBlob) -> bytes:
        """The bytes of an incoming file, read in a worker thread."""
        return await self.ctx.in_thread(self._read, blob.path)

    def _read(self, path: Path) -> bytes:
        self._check(path)
        return path.read_bytes()

    @deferred
    async def discard(self, blob: IncomingBlob) -> None:
        """Remove an incoming file that will not be delivered (or is no longer needed)."""
        await self.ctx.in_thread(self.ctx.blobs.remove_incoming, blob.path)

    def _check(self, path: Path) -> None:
        if path.parent.resolve() != self.ctx.blobs.tmp.resolve():
            raise ValueError(f"not an incoming file: {path}")


def _copy(source: int, dest: int, offset: int, count: int) -> None:
    """Copy *count* bytes at *offset* of *source* to the end of *dest*, in the kernel."""
    while count > 0:
        try:
            done = os.copy_file_range(source, dest, min(count, _COPY_CHUNK), offset)
        except OSError:
            done = os.sendfile(dest, source, offset, min(count, _COPY_CHUNK))
        if done <= 0:
            raise OSError("short copy of an incoming message")
        offset += done
        count -= done
