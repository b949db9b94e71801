"""Message files on disk, in maildir layout under ``<data_dir>/mail``.

Layout (every name generated here; nothing comes from an address or a mailbox name)::

    mail/tmp/<unique>                          incoming files being written
    mail/<shard>/<account id>/new/<unique>     delivered messages
    mail/<shard>/<account id>/cur/<unique>     appended / copied messages

An account's files do not depend on the mailbox that indexes them (the index says which
mailbox a message is in), so a file can be linked into place before the transaction that
allocates its UID, and moving a message between mailboxes never touches the disk.

A message is written once under ``tmp/`` and fsynced, then hard-linked into each
recipient's mailbox directory, and the directories are fsynced.  The functions here are
blocking; the store runs them in a worker thread.
"""

from __future__ import annotations

import errno
import itertools
import mmap
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import attrs

T = TypeVar("T")

_counter = itertools.count()
_counter_lock = threading.Lock()


def unique_name() -> str:
    """A maildir-style unique file name: time, microseconds, pid, counter, host."""
    now = time.time()
    with _counter_lock:
        n = next(_counter)
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
    return f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{n}.{host}"


@attrs.frozen
class IncomingBlob:
    """A complete, fsynced message file under ``mail/tmp``, not yet in any mailbox."""

    path: Path
    size: int


class BlobWriter:
    """Streams one incoming message into ``mail/tmp``; :meth:`finish` makes it durable."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.size = 0
        self._fsync = fsync
        self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 - closed in finish/abort

    def write(self, data: bytes) -> None:
        """Append bytes to the file."""
        assert self._file is not None, "writer already finished"
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> IncomingBlob:
        """Flush and fsync the file and return it as an :class:`IncomingBlob` (blocking)."""
        assert self._file is not None, "writer already finished"
        f, self._file = self._file, None
        try:
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        finally:
            f.close()
        return IncomingBlob(self.path, self.size)

    def abort(self) -> None:
        """Close and remove the partial file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class BlobStore:
    """The maildir tree of one data directory."""

    def __init__(self, data_dir: Path, fsync: bool = True) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "mail"
        self.tmp = self.root / "tmp"
        self.fsync = fsync
        #: False once the filesystem refused ``RWF_NOWAIT`` (then every read is threaded).
        self._nowait_works = True
        # what _checked puts in front of a clean relative path (``mail/...``) after "mail"
        self._mail_prefix = os.path.normpath(self.root)
        self._root_prefix = os.path.join(self._mail_prefix, "")

    def prepare(self) -> None:
        """Create ``mail/`` and ``mail/tmp`` (mode 0700)."""
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    # -- writing ---------------------------------------------------------------------------

    def writer(self) -> BlobWriter:
        """A new writer for an incoming message."""
        return BlobWriter(self.tmp / unique_name(), self.fsync)

    def write_bytes(self, data: bytes) -> IncomingBlob:
        """Write a complete message from memory (blocking)."""
        writer = self.writer()
        try:
            writer.write(data)
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    @staticmethod
    def account_dir(account_id: int) -> str:
        """The account's directory, relative to the data dir."""
        return f"mail/{account_id % 256:02x}/{account_id}"

    def message_dir(self, account_id: int, sub: str) -> str:
        """An account's ``new`` or ``cur`` directory, relative to the data dir."""
        assert sub in ("new", "cur")
        return f"{self.account_dir(account_id)}/{sub}"

    def link(self, source: Path, account_id: int, sub: str) -> str:
        """Hard-link *source* into an account's directory; return the new relative path.

        The directory is not fsynced here: call :meth:`sync_dirs` once for a batch.
        """
        rel_dir = self.message_dir(account_id, sub)
        directory = self.data_dir / rel_dir
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = unique_name()
        os.link(source, directory / name)
        return f"{rel_dir}/{name}"

    def sync_dirs(self, rel_paths: Iterable[str]) -> None:
        """fsync the directories holding *rel_paths* (each once)."""
        if not self.fsync:
            return
        for directory in sorted({str((self.data_dir / p).parent) for p in rel_paths}):
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def parse_file(self, path: Path, parser: Callable[[Any], T]) -> T:
        """Run *parser* over the bytes of a file, memory-mapped (blocking)."""
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return parser(b"")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return parser(mapped)

    # -- reading and removing --------------------------------------------------------------

    def path(self, rel_path: str) -> Path:
        """The absolute path of a stored message (refuses anything outside ``mail/``)."""
        return Path(self._checked(rel_path))

    def _checked(self, rel_path: str) -> str:
        """*rel_path* under the data directory, normalised; ValueError if ``..`` or an
        absolute path would take it outside ``mail/``.  A lexical check (no ``stat`` of
        each directory): only a3mail writes under ``mail/``, so no symlink is followed out
        of it, and a FETCH of many messages does not pay a ``resolve()`` per message."""
        if _CLEAN_PATH.fullmatch(rel_path):  # as the store writes them: no need to normalise
            return self._mail_prefix + rel_path[4:]
        full = os.path.normpath(os.path.join(self.data_dir, rel_path))
        if not full.startswith(self._root_prefix):
            raise ValueError(f"blob path outside the mail directory: {rel_path!r}")
        return full

    def open(self, rel_path: str) -> BinaryIO:
        """Open a stored message for binary reading."""
        return open(self._checked(rel_path), "rb")

    def read(self, rel_path: str) -> bytes:
        """The exact stored bytes of a message."""
        with self.open(rel_path) as f:
            return f.read()

    def read_many(
        self, rel_paths: Iterable[str], sizes: Iterable[int] | None = None, *, whole: bool = True
    ) -> list[bytes | None]:
        """The bytes of several stored messages, in order (blocking: call it once, in a
        worker thread, for a batch); None for a file that cannot be read.

        With *whole*, each file is read whole and *sizes* (the indexed sizes) are hints
        that let a file be read with one ``read`` call (``os.open``/``os.read`` without a
        buffered file object: half the cost per small file).  Without it, at most
        ``sizes[i]`` bytes are read from the start of each file (the header of a message
        with a big attachment, for a header sync)."""
        wanted = iter(sizes) if sizes is not None else itertools.repeat(READ_HINT)
        read = _read_whole if whole else _read_prefix
        out: list[bytes | None] = []
        for rel, size in zip(rel_paths, wanted):
            try:
                out.append(read(self._checked(rel), size))
            except (OSError, ValueError):
                out.append(None)
        return out

    def read_cached(
        self, rel_paths: Iterable[str], lengths: Iterable[int], *, whole: bool = True
    ) -> list[bytes | None]:
        """As :meth:`read_many`, but only as far as the page cache answers without waiting
        for the disk: it stops at the first file whose bytes are not all in memory, and
        the caller reads that one and the rest with :meth:`read_many` in a worker thread.

        Called in the reactor thread: a FETCH of messages read moments ago (the usual
        case) then costs no thread hand-off, whose waking and GIL exchange cost more than
        the reads themselves.  Data reads use ``RWF_NOWAIT``; only opening a file whose
        inode is not cached can still wait for the disk, once, and then the data read
        fails too and the rest goes to the thread.  Files over :data:`INLINE_LIMIT` and
        systems without ``RWF_NOWAIT`` always go to the thread (an empty list here).

        *lengths* are the indexed sizes (whole files) or the prefix lengths wanted."""
        out: list[bytes | None] = []
        if _NOWAIT is None or not self._nowait_works:
            return out
        budget = INLINE_BUDGET
        for rel, length in zip(rel_paths, lengths):
            if length > INLINE_LIMIT or length > budget:
                break
            try:
                data = _read_nowait(self._checked(rel), length, whole)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # the filesystem can't
                    self._nowait_works = False
                break  # anything else: the thread's read reports it (as None)
            except ValueError:
                out.append(None)
                continue
            if data is None:
                break
            out.append(data)
            budget -= length
        return out

    def remove(self, rel_paths: Iterable[str]) -> None:
        """Unlink stored messages (missing files are ignored)."""
        for rel in rel_paths:
            self.path(rel).unlink(missing_ok=True)

    def remove_paths(self, paths: Iterable[Path]) -> None:
        """Unlink absolute paths (missing files are ignored)."""
        for path in paths:
            path.unlink(missing_ok=True)

    def remove_incoming(self, path: Path) -> None:
        """Remove a file from ``mail/tmp`` once it has been linked everywhere it goes."""
        if path.parent.resolve() != self.tmp.resolve():
            raise ValueError(f"not an incoming file: {path}")
        path.unlink(missing_ok=True)

    def remove_account(self, account_id: int) -> None:
        """Remove an account's whole directory tree."""
        _rmtree(self.data_dir / self.account_dir(account_id))

    # -- sweeping ----------------------------------------------------------------------------

    def tmp_files(self) -> Iterator[Path]:
        """Files under ``mail/tmp``."""
        if self.tmp.is_dir():
            yield from (p for p in self.tmp.iterdir() if p.is_file())

    def account_ids_on_disk(self) -> Iterator[int]:
        """The account ids that have a directory under ``mail/``."""
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if shard.name == "tmp" or not shard.is_dir():
                continue
            for entry in shard.iterdir():
                if entry.is_dir() and entry.name.isdigit():
                    yield int(entry.name)

    def account_files(self, account_id: int) -> Iterator[str]:
        """Relative paths of every message file in an account's directory."""
        for sub in ("new", "cur"):
            rel_dir = self.message_dir(account_id, sub)
            directory = self.data_dir / rel_dir
            if directory.is_dir():
                for f in directory.iterdir():
                    yield f"{rel_dir}/{f.name}"

    def age(self, rel_or_abs: str | Path) -> float:
        """Seconds since the file was last modified (0 if it vanished)."""
        path = rel_or_abs if isinstance(rel_or_abs, Path) else self.data_dir / rel_or_abs
        try:
            return max(0.0, time.time() - path.stat().st_mtime)
        except FileNotFoundError:
            return 0.0


def _rmtree(path: Path) -> None:
    if not path.exists():
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


#: A relative path as the store writes them: ``mail`` then names that are not ``.``/``..``.
_CLEAN_PATH = re.compile(r"mail(?:/(?!\.\.?(?:/|\Z))[^/\x00]+)+")
#: How much :meth:`BlobStore.read_many` asks for at once when no size is known.
READ_HINT = 64 * 1024
#: :meth:`BlobStore.read_cached` leaves files larger than this to the worker thread.
INLINE_LIMIT = 256 * 1024
#: ... and stops after this many bytes in one call (the rest goes to the thread).
INLINE_BUDGET = 4 * 1024 * 1024
#: ``preadv`` flag: fail with EAGAIN instead of waiting for the disk (Linux); None elsewhere.
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


def _read_nowait(path: str, length: int, whole: bool) -> bytes | None:
    """The first *length* bytes of the file at *path* (all of it with *whole*, expected
    to be *length* long) from the page cache, or None when the answer would be unsure: a
    short read may be a part of the file that is cached, so it is left to the blocking
    read.  BlockingIOError when the data is not cached."""
    assert _NOWAIT is not None
    buffer = bytearray(length)
    beyond = [bytearray(1)] if whole else []  # a byte past the indexed size: there is more
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        got = os.preadv(fd, [buffer, *beyond], 0, _NOWAIT)
    finally:
        os.close(fd)
    if got != length:  # short (unsure), or longer than indexed: the thread reads it whole
        return None
    return bytes(buffer)


def _read_whole(path: str, size: int) -> bytes:
    """All bytes of the file at *path*, expected to be *size* long (one ``read`` call when
    it is)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, max(size, 0) + 1)
        if len(first) <= size:
            return first
        pieces = [first]
        while chunk := os.read(fd, READ_HINT):
            pieces.append(chunk)
        return b"".join(pieces)
    finally:
        os.close(fd)


def _read_prefix(path: str, length: int) -> bytes:
    """The first *length* bytes of the file at *path* (fewer if it is shorter)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pieces: list[bytes] = []
        left = max(length, 0)
        while left > 0 and (chunk := os.read(fd, left)):
            pieces.append(chunk)
            left -= len(chunk)
        return b"".join(pieces)
    finally:
        os.close(fd)
