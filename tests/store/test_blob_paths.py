"""BlobStore.path / open: a lexical check keeps every path inside ``mail/``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

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
        for bad in ("mail/../secret", "../mail/x", "/etc/passwd", "pgdata/x", "mail", "mailx/y"):
            with self.assertRaises(ValueError, msg=bad):
                self.blobs.path(bad)
            with self.assertRaises(ValueError, msg=bad):
                self.blobs.open(bad)

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
