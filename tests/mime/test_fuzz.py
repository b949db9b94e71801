"""parse_message never raises and always returns sane offsets, whatever the input."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from a3mail.mime import ParsedMessage, parse_message
from a3mail.mime.parse import _build

from .corpus import CASES
from .support import NESTED, walk

#: Examples per fuzz test; raise it (A3MAIL_FUZZ_EXAMPLES=20000) for a long run.
FUZZ = settings(
    max_examples=int(os.environ.get("A3MAIL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

SEEDS = [NESTED, NESTED.replace(b"\r\n", b"\n")] + [raw for _n, raw, _e in CASES[::4]]

TOKENS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--XX",
    b"--XX--",
    b"--Alt\r\n",
    b"--In--\r\n",
    b"Content-Type: multipart/mixed; boundary=XX\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/plain; charset=\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1=x\r\n",
    b"=?utf-8?B?5L2g?=",
    b"=?x?q?=FF?=",
    b'"',
    b"(",
    b"<",
    b";",
    b":",
    b"\x00",
    b"\xff\xfe",
    b"=\r\n",
    b"<script>",
]

mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(TOKENS)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(max_size=20)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 60)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 200)),
)


def mutate(data: bytes, operations: list[tuple[str, int, Any]]) -> bytes:
    for kind, where, arg in operations:
        pos = where % (len(data) + 1)
        if kind == "insert":
            data = data[:pos] + arg + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + arg :]
        elif kind == "truncate":
            data = data[:pos]
        else:
            data = data[:pos] + data[pos : pos + arg] * 3 + data[pos + arg :]
    return data


def check(case: unittest.TestCase, data: bytes, **kwargs: int) -> None:
    """Parse ``data`` and assert every invariant of the result.

    The internal builder is called directly so that a bug is not hidden by
    parse_message's fallback for unexpected errors.
    """
    p = _build(
        data,
        kwargs.get("max_text_chars", 1_000_000),
        kwargs.get("max_parts", 2000),
        kwargs.get("max_depth", 40),
    )
    case.assertEqual(parse_message(data, **kwargs), p)
    size = len(data)
    case.assertEqual(p.size, size)
    case.assertTrue(0 <= p.header_size <= size)
    sections = set()
    for node in walk(p.body):
        hs, bs, be = node["header_start"], node["body_start"], node["body_end"]
        case.assertTrue(0 <= hs <= bs <= be <= size, node)
        case.assertEqual(node["size"], be - bs)
        case.assertIsInstance(node["type"], str)
        case.assertIsInstance(node["subtype"], str)
        case.assertTrue(node["type"] != "multipart" or node.get("children"), node)
        for child in node.get("children", []):
            case.assertTrue(bs <= child["header_start"] and child["body_end"] <= be)
        sections.add(node["section"])
    for attachment in p.attachments:
        case.assertIn(attachment["section"], sections)
        case.assertGreaterEqual(attachment["size"], 0)
    limit = kwargs.get("max_text_chars", 1_000_000)
    case.assertLessEqual(len(p.text), limit)
    case.assertLessEqual(len(p.html), limit)
    text = json.dumps(p.to_json(), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    case.assertNotIn("\\u0000", text)
    case.assertEqual(ParsedMessage.from_json(json.loads(text)), p)


class FuzzTests(unittest.TestCase):
    """Garbage and mutated real messages."""

    @FUZZ
    @given(st.binary(max_size=4000))
    def test_random_bytes(self, data: bytes) -> None:
        """Random bytes parse without error and with sane offsets."""
        check(self, data)

    @FUZZ
    @given(st.sampled_from(SEEDS), st.lists(mutation, max_size=8))
    def test_mutated_messages(self, seed: bytes, operations: list[tuple[str, int, Any]]) -> None:
        """Mutated real messages parse without error and with sane offsets."""
        check(self, mutate(seed, operations))

    @FUZZ
    @given(
        st.lists(st.sampled_from([*TOKENS, b"x", b"abc ", b"Subject: s\r\n"]), max_size=80),
        st.integers(1, 20),
        st.integers(0, 6),
    )
    def test_token_soup_with_small_limits(
        self, tokens: list[bytes], parts: int, depth: int
    ) -> None:
        """Structure-heavy input with tight limits stays within bounds."""
        check(self, b"".join(tokens), max_parts=parts, max_depth=depth, max_text_chars=50)
