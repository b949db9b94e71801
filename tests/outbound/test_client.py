"""The ESMTP client in memory (StringTransport, Clock): pipelining, SIZE, dot-stuffing
across chunk boundaries, per-recipient replies, timeouts."""

from __future__ import annotations

import io

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from a3mail.outbound.client import ClientSettings, DeliveryClient, PrefixedFile, SessionError


def make_client(
    message: bytes = b"Subject: x\r\n\r\nbody\r\n", recipients=("a@x.test", "b@x.test")
):
    client = DeliveryClient(
        ClientSettings("me.test", command_timeout=30, tls="none"),
        "mx.x.test",
        "s@me.test",
        list(recipients),
        io.BytesIO(message),
        len(message),
    )
    clock = Clock()
    client.callLater = clock.callLater  # type: ignore[method-assign]
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, clock


def feed(client, *lines: bytes) -> None:
    for line in lines:
        client.dataReceived(line + b"\r\n")


class ClientTests(unittest.TestCase):
    def test_pipelined_rcpts_size_and_per_recipient_replies(self):
        client, transport, _ = make_client()
        feed(client, b"220 mx ready")
        self.assertEqual(transport.value(), b"EHLO me.test\r\n")
        transport.clear()
        feed(client, b"250-mx", b"250-PIPELINING", b"250 SIZE 1000")
        self.assertEqual(transport.value(), b"MAIL FROM:<s@me.test> SIZE=20\r\n")
        transport.clear()
        feed(client, b"250 ok")
        # both RCPTs written before any reply
        self.assertEqual(transport.value(), b"RCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        transport.clear()
        feed(client, b"550 5.1.1 no", b"250 ok")
        self.assertEqual(transport.value(), b"DATA\r\n")
        transport.clear()
        feed(client, b"354 go")
        while client.transport.producer is not None:
            client.transport.producer.resumeProducing()
        self.assertTrue(transport.value().endswith(b"body\r\n.\r\n"))
        feed(client, b"250 2.0.0 queued")
        attempt = self.successResultOf(client.result)
        self.assertEqual(attempt.replies["a@x.test"], (550, "5.1.1 no"))
        self.assertEqual(attempt.replies["b@x.test"], (250, "2.0.0 queued"))

    def test_dot_stuffing_across_chunk_boundaries(self):
        client, _, _ = make_client()
        self.assertEqual(client.transformChunk(b".a\r\nb\r\n"), b"..a\r\nb\r\n")
        self.assertEqual(client.transformChunk(b".c\r\n.d"), b"..c\r\n..d")
        self.assertEqual(client.transformChunk(b".e\r\n"), b".e\r\n")  # not at a line start

    def test_silent_server_times_out_as_a_temporary_failure(self):
        client, _, clock = make_client()
        feed(client, b"220 mx ready")
        clock.advance(31)
        failure = self.failureResultOf(client.result, SessionError)
        self.assertFalse(failure.value.permanent)
        client.connectionLost(None)

    def test_5xx_greeting_is_permanent(self):
        client, _, _ = make_client()
        feed(client, b"554 go away")
        failure = self.failureResultOf(client.result, SessionError)
        self.assertEqual(failure.value.code, 554)
        self.assertTrue(failure.value.permanent)

    def test_prefixed_file(self):
        file = PrefixedFile(b"ABC", io.BytesIO(b"defg"))
        self.assertEqual(
            [file.read(2), file.read(2), file.read(2), file.read(9)], [b"AB", b"C", b"de", b"fg"]
        )

    def test_credentials_are_not_sent_without_tls(self):
        client = DeliveryClient(
            ClientSettings("me.test", tls="starttls", username="u", password="p"),
            "relay.test",
            "s@me.test",
            ["a@x.test"],
            io.BytesIO(b"x\r\n"),
            3,
        )
        transport = StringTransport()
        client.makeConnection(transport)
        feed(client, b"220 relay", b"250-relay", b"250 AUTH PLAIN LOGIN")
        self.failureResultOf(client.result, SessionError)
        self.assertNotIn(b"AUTH", transport.value())
        client.connectionLost(None)
