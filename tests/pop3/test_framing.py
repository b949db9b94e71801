"""Dot-stuffing and TOP framing, chunk by chunk, and the streaming sender."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from a3mail.pop3.framing import DotStuffer, TopFilter
from a3mail.pop3.sender import CHUNK_SIZE, MessageSender, SendAborted
from tests.pop3.support import decode_multiline

KiB = 1024


def frame(message: bytes, chunk_size: int, top: int | None = None) -> bytes:
    """The bytes a session sends after the status line, fed in chunks of *chunk_size*."""
    transport = StringTransport()
    sender = MessageSender(
        io.BytesIO(message),
        transport,
        top=None if top is None else TopFilter(top),
        chunk_size=chunk_size,
    )
    done = sender.start()
    while transport.producer is not None:
        transport.producer.resumeProducing()
    sent = []
    done.addCallback(sent.append)
    assert sent, "the sender did not finish"
    return bytes(transport.value())


def received(message: bytes, chunk_size: int = CHUNK_SIZE, top: int | None = None) -> bytes:
    """What an RFC 1939 client reads back (the terminator must end the data exactly)."""
    _status, content, rest = decode_multiline(b"+OK\r\n" + frame(message, chunk_size, top))
    assert rest == b"", f"bytes after the terminator: {rest[:60]!r}"
    return content


def dot_line_at(offset: int, total: int) -> bytes:
    """A CRLF message of *total* bytes whose line starting at *offset* is just ``.``."""
    line = b"x" * 62 + b"\r\n"
    head = (line * (offset // len(line) + 1))[:offset]
    head = head[:-2] + b"\r\n"  # a line ends exactly at the offset
    tail = b".\r\n" + line * ((total - offset) // len(line) + 1)
    return head + tail


class DotStuffingBoundaryTests(TestCase):
    """A ``.`` line exactly at a chunk boundary: Twisted's 16 KiB one and ours, 64 KiB."""

    def assertRoundTrip(self, message: bytes, chunk_size: int = CHUNK_SIZE) -> None:
        self.assertEqual(received(message, chunk_size), message)

    def test_dot_line_at_16_kib(self):
        message = dot_line_at(16 * KiB, 40 * KiB)
        self.assertEqual(message[16 * KiB : 16 * KiB + 3], b".\r\n")
        self.assertRoundTrip(message)
        self.assertRoundTrip(message, chunk_size=16 * KiB)

    def test_dot_line_at_64_kib(self):
        message = dot_line_at(64 * KiB, 100 * KiB)
        self.assertEqual(message[64 * KiB : 64 * KiB + 3], b".\r\n")
        self.assertRoundTrip(message)
        out = frame(message, CHUNK_SIZE)
        self.assertEqual(out[64 * KiB : 64 * KiB + 4], b"..\r\n")

    def test_dot_line_at_every_small_boundary(self):
        message = b"a\r\n.\r\n..\r\n.x\r\n\r\n.\r\n"
        for chunk_size in range(1, len(message) + 1):
            self.assertRoundTrip(message, chunk_size)

    def test_lines_of_only_dots(self):
        message = b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n.\r\n.\r\n"
        self.assertRoundTrip(message)
        self.assertEqual(
            frame(message, CHUNK_SIZE),
            b"Subject: dots\r\n\r\n..\r\n...\r\n....\r\n..\r\n..\r\n.\r\n",
        )

    def test_message_starting_with_a_dot(self):
        self.assertEqual(frame(b".\r\n", 1), b"..\r\n.\r\n")

    def test_message_not_ending_in_crlf_gets_a_proper_terminator(self):
        self.assertEqual(
            frame(b"Subject: x\r\n\r\nno newline", 4), b"Subject: x\r\n\r\nno newline\r\n.\r\n"
        )
        self.assertEqual(frame(b"Subject: x\r\n\r\nends in CR\r", 3)[-8:], b"in CR\r\n.\r\n"[-8:])
        self.assertNotIn(b"\r\r\n", frame(b"Subject: x\r\n\r\nends in CR\r", 3))
        # A last line that is a lone "." is stuffed, not taken for the terminator.
        self.assertEqual(frame(b"Subject: x\r\n\r\n.", 5)[-9:], b"\r\n..\r\n.\r\n")
        self.assertEqual(received(b"Subject: x\r\n\r\n."), b"Subject: x\r\n\r\n.\r\n")

    def test_empty_message(self):
        self.assertEqual(frame(b"", 16), b".\r\n")

    def test_crlf_is_never_doubled(self):
        message = b"A: b\r\n\r\n" + b"line\r\n" * 10_000
        out = frame(message, 7)
        self.assertNotIn(b"\r\r\n", out)
        self.assertEqual(out, message + b".\r\n")

    def test_a_dot_after_a_bare_lf_is_stuffed(self):
        self.assertEqual(frame(b"a\n.\r\n", 2), b"a\n..\r\n.\r\n")

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.sampled_from([b"a", b".", b"\r\n", b"\n", b"\r", b"..", b"x y"]), max_size=60),
        st.integers(min_value=1, max_value=9),
    )
    def test_stuffing_any_message_round_trips(self, parts, chunk_size):
        message = b"".join(parts)
        stuffer = DotStuffer()
        out = b"".join(
            stuffer.feed(message[i : i + chunk_size]) for i in range(0, len(message), chunk_size)
        )
        self.assertEqual(out + stuffer.end(), _stuff(message) + _end(message))
        if message.endswith(b"\r\n") and b"\n" not in message.replace(b"\r\n", b""):
            self.assertEqual(received(message, chunk_size), message)  # strict CRLF client


def _stuff(message: bytes) -> bytes:
    """Reference dot-stuffing of a whole message at once."""
    return re.sub(rb"(^|\n)\.", rb"\1..", message)


def _end(message: bytes) -> bytes:
    if not message or message.endswith(b"\r\n"):
        return b".\r\n"
    return b"\n.\r\n" if message.endswith(b"\r") else b"\r\n.\r\n"


def top_reference(message: bytes, lines: int) -> bytes:
    """Header, blank line and *lines* body lines, computed on the whole message."""
    out, in_header, taken = [], True, 0
    for line in re.findall(rb"[^\n]*\n|[^\n]+$", message):
        if in_header:
            out.append(line)
            in_header = line not in (b"\r\n", b"\n")
        elif taken < lines:
            out.append(line)
            taken += 1
        else:
            break
    return b"".join(out)


class TopTests(TestCase):
    MESSAGE = b"From: a\r\nSubject: b\r\n\r\none\r\n.two\r\nthree\r\n"

    def test_zero_lines_is_header_and_blank_line(self):
        self.assertEqual(received(self.MESSAGE, top=0), b"From: a\r\nSubject: b\r\n\r\n")

    def test_n_lines(self):
        self.assertEqual(
            received(self.MESSAGE, top=2), b"From: a\r\nSubject: b\r\n\r\none\r\n.two\r\n"
        )
        self.assertEqual(frame(self.MESSAGE, 3, top=2)[-12:], b"\r\n..two\r\n.\r\n")

    def test_more_lines_than_the_body_has(self):
        self.assertEqual(received(self.MESSAGE, top=99), self.MESSAGE)

    def test_message_without_body(self):
        self.assertEqual(received(b"Subject: only\r\n", top=3), b"Subject: only\r\n")

    def test_blank_line_split_across_chunks(self):
        for chunk_size in range(1, 12):
            self.assertEqual(
                received(self.MESSAGE, chunk_size, top=1), top_reference(self.MESSAGE, 1)
            )

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.sampled_from([b"a", b".", b"\r\n", b"\n", b"\r", b"H: v"]), max_size=40),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=1, max_value=7),
    )
    def test_top_of_any_message_in_any_chunks(self, parts, lines, chunk_size):
        message = b"".join(parts)
        top = TopFilter(lines)
        out = b""
        for i in range(0, len(message), chunk_size):
            out += top.feed(message[i : i + chunk_size])
            if top.done:
                break
        self.assertEqual(out, top_reference(message, lines))


class SenderTests(TestCase):
    def test_flow_control_one_chunk_per_pull(self):
        """Nothing is read ahead of the consumer: one chunk per resumeProducing."""
        message = b"x" * 62 + b"\r\n"
        data = message * 4096  # 256 KiB
        transport = StringTransport()
        source = io.BytesIO(data)
        sender = MessageSender(source, transport, chunk_size=64 * KiB)
        done = sender.start()
        self.assertEqual(transport.value(), b"")
        transport.producer.resumeProducing()
        self.assertEqual(len(transport.value()), 64 * KiB)
        self.assertEqual(source.tell(), 64 * KiB)
        for _ in range(4):
            transport.producer.resumeProducing()
        self.assertIsNone(transport.producer)
        self.assertEqual(transport.value(), data + b".\r\n")
        self.assertEqual(self.successResultOf(done), len(data))
        self.assertTrue(source.closed)

    def test_last_data_and_terminator_go_in_one_write(self):
        """A terminator written on its own waits for the client's delayed ACK (Nagle's
        algorithm): 40 ms per message.  It must leave with the end of the message."""
        writes: list[bytes] = []
        transport = StringTransport()
        transport.write = writes.append  # type: ignore[method-assign]
        for size in (4000, 64 * KiB + 10):
            writes.clear()
            done = MessageSender(io.BytesIO(b"x" * (size - 2) + b"\r\n"), transport).start()
            while transport.producer is not None:
                transport.producer.resumeProducing()
            self.successResultOf(done)
            self.assertEqual(len(writes), -(-size // CHUNK_SIZE))
            self.assertTrue(writes[-1].endswith(b"x\r\n.\r\n"))

    def test_stop_closes_the_file_and_reports_abort(self):
        transport = StringTransport()
        source = io.BytesIO(b"a\r\n" * 100_000)
        done = MessageSender(source, transport, chunk_size=1024).start()
        transport.producer.resumeProducing()
        transport.producer.stopProducing()
        self.failureResultOf(done, SendAborted)
        self.assertTrue(source.closed)

    def test_read_error_fails_the_transfer(self):
        class Broken(io.BytesIO):
            def read(self, *args):  # type: ignore[override]
                raise OSError(5, "Input/output error")

        transport = StringTransport()
        done = MessageSender(Broken(b""), transport).start()
        transport.producer.resumeProducing()
        self.failureResultOf(done, OSError)
        self.assertIsNone(transport.producer)
