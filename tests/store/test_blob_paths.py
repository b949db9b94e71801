"""BlobStore.path / open: a lexical check keeps every path inside ``mail/``; reading many
files, from the page cache first."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from a3mail.store import blobs
from a3mail.store.blobs import BlobStore


class BlobPathTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="a3mail-blob-paths-"))
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.blobs = BlobStore(self.data_dir, fsync=False)
        self.blobs.prepare()

    def test_a_stored_path_resolves_under_the_data_dir(self) -> None:
        self.assertEqual(self.blobs.path("mail/1/cur/x"), self.data_dir / "mail/1/cur/x")

    def test_paths_that_leave_mail_are_refused(self) -> None:
        bad_paths = ("mail/../secret", "../mail/x", "/etc/passwd", "pgdata/x", "mail", "mailx/y")
        for bad in (*bad_paths, "mail/..", "mail/x/../../y", "mail/./.."):
            with self.assertRaises(ValueError, msg=bad):
                self.blobs.path(bad)
            with self.assertRaises(ValueError, msg=bad):
                self.blobs.open(bad)

    def test_clean_and_unusual_paths_resolve_as_normalised(self) -> None:
        """Paths as the store writes them skip normalisation; anything else is normalised
        first, with the same result."""
        mail = self.data_dir / "mail"
        cases = {
            "mail/0a/10/new/1.M2P3": mail / "0a/10/new/1.M2P3",
            "mail/tmp/...": mail / "tmp/...",
            "mail/tmp/.hidden": mail / "tmp/.hidden",
            "mail/./tmp//x/": mail / "tmp/x",
            "mail/a/../b": mail / "b",
        }
        for rel, expected in cases.items():
            self.assertEqual(self.blobs.path(rel), expected, rel)

    def test_read_many_gives_none_for_what_cannot_be_read(self) -> None:
        (self.data_dir / "mail" / "tmp" / "a").write_bytes(b"first")
        self.assertEqual(
            self.blobs.read_many(["mail/tmp/a", "mail/tmp/missing", "../x"]),
            [b"first", None, None],
        )

    def test_read_many_reads_whole_files_whatever_the_size_hint(self) -> None:
        """The indexed size is only a hint: a file longer or shorter than it is still read
        exactly, and a missing file is None."""
        big = bytes(range(256)) * 1000
        (self.data_dir / "mail" / "tmp" / "big").write_bytes(big)
        (self.data_dir / "mail" / "tmp" / "empty").write_bytes(b"")
        paths = ["mail/tmp/big"] * 4 + ["mail/tmp/empty", "mail/tmp/missing"]
        self.assertEqual(
            self.blobs.read_many(paths, [len(big), 10, len(big) * 2, 0, 0, 5]),
            [big, big, big, big, b"", None],
        )


class CachedReadTests(SynchronousTestCase):
    """BlobStore.read_cached: what the page cache holds, without waiting for the disk."""

    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="a3mail-blob-cached-"))
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.blobs = BlobStore(self.data_dir, fsync=False)
        self.blobs.prepare()
        if blobs._NOWAIT is None:
            raise SkipTest("this system has no RWF_NOWAIT: every read goes to the thread")
        self.files = {}
        for name, content in (("a", b"first message"), ("b", b"second"), ("c", b"")):
            (self.data_dir / "mail" / "tmp" / name).write_bytes(content)
            self.files[f"mail/tmp/{name}"] = content

    def test_cached_files_are_read_whole_or_by_prefix(self) -> None:
        paths = list(self.files)
        sizes = [len(c) for c in self.files.values()]
        self.assertEqual(self.blobs.read_cached(paths, sizes), list(self.files.values()))
        self.assertEqual(
            self.blobs.read_cached(paths, [5, 3, 0], whole=False), [b"first", b"sec", b""]
        )

    def test_it_stops_at_the_first_file_that_would_wait_for_the_disk(self) -> None:
        real = os.preadv

        def preadv(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
            if os.fstat(fd).st_size == len(b"second"):
                raise BlockingIOError(errno.EAGAIN, "not cached")
            return real(fd, buffers, offset, flags)

        self.patch(os, "preadv", preadv)
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 6, 0]), [b"first message"])

    def test_a_file_whose_length_is_not_the_indexed_one_is_left_to_the_thread(self) -> None:
        """A short read may be a partly cached file, a long one a file the index got
        wrong: neither is answered here, and nothing after it either."""
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 9, 0]), [b"first message"])
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 2, 0]), [b"first message"])
        self.assertEqual(self.blobs.read_many(list(self.files)[1:], [9, 0]), [b"second", b""])

    def test_big_files_and_a_spent_budget_go_to_the_thread(self) -> None:
        self.patch(blobs, "INLINE_LIMIT", 10)
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 6, 0]), [])
        self.patch(blobs, "INLINE_LIMIT", 100)
        self.patch(blobs, "INLINE_BUDGET", 15)
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 6, 0]), [b"first message"])

    def test_a_filesystem_without_nowait_reads_is_not_asked_again(self) -> None:
        calls = []

        def preadv(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
            calls.append(fd)
            raise OSError(errno.EOPNOTSUPP, "not supported")

        self.patch(os, "preadv", preadv)
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 6, 0]), [])
        self.assertEqual(self.blobs.read_cached(list(self.files), [13, 6, 0]), [])
        self.assertEqual(len(calls), 1)

    def test_a_path_outside_mail_is_none_as_in_read_many(self) -> None:
        self.assertEqual(self.blobs.read_cached(["../x", "mail/tmp/b"], [1, 6]), [None, b"second"])
