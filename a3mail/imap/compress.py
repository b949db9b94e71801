"""COMPRESS=DEFLATE (RFC 4978): raw deflate both ways after ``COMPRESS DEFLATE``.

Every write is compressed and flushed with ``Z_SYNC_FLUSH``, so the client can decode each
response as it arrives.  Input is inflated in bounded chunks as the command reader drains
(:meth:`Deflate.inflate`), so a small compressed packet that expands to megabytes (a
"zip bomb") never sits in memory at once: the session's usual limits on lines, literals and
buffered input apply to the inflated bytes.
"""

from __future__ import annotations

import zlib

#: Most inflated bytes produced per step.
INFLATE_CHUNK = 64 * 1024
#: zlib's compression level for responses (6 is zlib's default; 1 costs less CPU for
#: slightly bigger output).
LEVEL = 6


class Deflate:
    """The two deflate streams of one session, and the compressed input not yet inflated."""

    def __init__(self, level: int = LEVEL) -> None:
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self.pending = b""

    def compress(self, data: bytes) -> bytes:
        """*data* compressed and flushed (a complete block the client can decode now)."""
        return self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def add(self, data: bytes) -> None:
        """Compressed bytes received."""
        self.pending += data

    def inflate(self, limit: int = INFLATE_CHUNK) -> bytes:
        """Up to *limit* inflated bytes of the pending input (consumed as far as they go);
        :class:`zlib.error` for input that is not a deflate stream."""
        out = self._in.decompress(self.pending, limit)
        self.pending = self._in.unconsumed_tail
        return out
