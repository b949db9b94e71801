"""compile_fetch: the bulk-FETCH renderer answers exactly as render_fetch, or declines."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from a3mail.imap.fetchfast import compile_fetch
from a3mail.imap.fetchrender import FileRange, render_fetch
from a3mail.imap.fetchspec import parse_fetch_items
from a3mail.store.search import FetchRecord
from tests.imap.tokens_helper import toks

COVERED = [
    "UID",
    "FLAGS",
    "MODSEQ",
    "INTERNALDATE",
    "RFC822.SIZE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "BODY[]",
    "BODY.PEEK[]",
    "BODY[HEADER]",
    "BODY.PEEK[HEADER]",
    "BODY[TEXT]",
    "BODY.PEEK[TEXT]",
]
DECLINED = [
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "BODY[1]",
    "BODY.PEEK[HEADER.FIELDS (From)]",
    "BODY.PEEK[]<0.10>",
    "BINARY.PEEK[]",
    "BINARY.SIZE[]",
    "BODY[1.MIME]",
]


def spec_of(items: list[str]) -> Any:
    return parse_fetch_items(toks("(" + " ".join(items) + ")"))


def record(data: bytes, header_size: int, flags: int, keywords: tuple[str, ...]) -> Any:
    return FetchRecord(
        uid=4242,
        modseq=99,
        flags=flags,
        keywords=keywords,
        internal_date=datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
        size=len(data),
        blob_path="x",
        header_size=header_size,
        parsed={},
    )


def general(spec: Any, msg: Any, seq: int, data: bytes, **flags: bool) -> bytes:
    """render_fetch's response with the FileRanges filled in, as the batch writer does."""
    pieces = render_fetch(spec, msg, seq, io.BytesIO(data), **flags)
    return b"".join(
        data[p.offset : p.offset + p.length] if isinstance(p, FileRange) else p for p in pieces
    )


messages = st.builds(
    lambda head, body: (head + b"\r\n", body),
    st.binary(min_size=0, max_size=200).map(lambda b: b"Subject: x\r\n" + b.replace(b"\n", b"")),
    st.binary(max_size=300),
)


class EquivalenceTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.sampled_from(COVERED), min_size=1, max_size=6, unique=True),
        messages,
        st.integers(0, 31),
        st.lists(st.sampled_from(["$Junk", "Work", "$Forwarded"]), unique=True, max_size=2),
        st.booleans(),
        st.booleans(),
        st.integers(1, 100_000),
    )
    def test_same_bytes_as_render_fetch(
        self, items, message, flags, keywords, with_uid, with_modseq, seq
    ):
        head, body = message
        data = head + body
        msg = record(data, len(head), flags, tuple(keywords))
        spec = spec_of(items)
        fast = compile_fetch(spec, with_uid=with_uid, with_modseq=with_modseq)
        assert fast is not None
        expected = general(spec, msg, seq, data, with_uid=with_uid, with_modseq=with_modseq)
        self.assertEqual(fast(msg, seq, data), expected)

    def test_empty_message(self) -> None:
        msg = record(b"", 0, 0, ())
        spec = spec_of(["UID", "BODY.PEEK[]", "RFC822.SIZE"])
        fast = compile_fetch(spec, with_uid=True, with_modseq=False)
        assert fast is not None
        self.assertEqual(
            fast(msg, 1, b""), general(spec, msg, 1, b"", with_uid=True, with_modseq=False)
        )

    def test_header_items_render_from_the_header_alone(self) -> None:
        """A header sync reads only each file's header: the header items render from those
        bytes exactly as render_fetch does from the whole file."""
        data = b"Subject: x\r\nFrom: a@b\r\n\r\n" + b"body\r\n" * 1000
        msg = record(data, 26, 0, ())
        for items in (["UID", "BODY.PEEK[HEADER]", "RFC822.SIZE"], ["RFC822.HEADER", "FLAGS"]):
            spec = spec_of(items)
            self.assertTrue(spec.header_only, items)
            fast = compile_fetch(spec, with_uid=True, with_modseq=False)
            assert fast is not None
            self.assertEqual(
                fast(msg, 2, data[:26]),
                general(spec, msg, 2, data, with_uid=True, with_modseq=False),
            )

    def test_items_it_does_not_cover_are_declined(self) -> None:
        for item in DECLINED:
            spec = spec_of(["UID", item])
            self.assertIsNone(compile_fetch(spec, with_uid=True, with_modseq=False), item)

    def test_short_file_or_unknown_header_size_is_left_to_render_fetch(self) -> None:
        data = b"Subject: x\r\n\r\nbody\r\n"
        spec = spec_of(["BODY.PEEK[HEADER]"])
        fast = compile_fetch(spec, with_uid=True, with_modseq=False)
        assert fast is not None
        self.assertIsNone(fast(record(data, 14, 0, ()), 1, data[:10]), "short header")
        whole = compile_fetch(spec_of(["BODY.PEEK[]"]), with_uid=True, with_modseq=False)
        assert whole is not None
        self.assertIsNone(whole(record(data, 14, 0, ()), 1, data[:-3]), "short file")
        self.assertIsNone(fast(record(data, 0, 0, ()), 1, data), "no header size")
        self.assertIsNone(fast(record(data, 14, 0, ()), 1, None), "no file")
        flags_only = compile_fetch(spec_of(["FLAGS"]), with_uid=True, with_modseq=True)
        assert flags_only is not None
        self.assertEqual(
            flags_only(record(data, 0, 1, ()), 3, None),
            b"* 3 FETCH (UID 4242 FLAGS (\\Seen) MODSEQ (99))\r\n",
        )
