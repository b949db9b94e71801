"""TCP options of IMAP sessions: Nagle off, quick ACKs while a command is only half sent."""

from __future__ import annotations

import socket
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap import server as imap_server
from a3mail.imap import tcp
from tests.imap.support import ImapTestCase


class RecordingSocket(socket.socket):
    """A real (unconnected) TCP socket that records the options set on it."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: Any) -> None:  # type: ignore[override]
        self.options.append((level, option, value))


class Wrapper:
    """Like a TLS wrapper: no socket of its own, the TCP transport under it."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport


class Transport:
    def __init__(self) -> None:
        self.socket = RecordingSocket()
        self.no_delay: bool | None = None

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled


class TcpOptionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.transport = Transport()
        self.addCleanup(self.transport.socket.close)

    def test_no_delay_is_set_on_the_transport(self) -> None:
        tcp.no_delay(self.transport)
        self.assertIs(self.transport.no_delay, True)

    def test_no_delay_ignores_transports_without_it(self) -> None:
        tcp.no_delay(object())  # no AttributeError

    def test_quick_ack_reaches_the_socket_under_a_wrapper(self) -> None:
        if not hasattr(socket, "TCP_QUICKACK"):
            raise self.skipTest("TCP_QUICKACK is Linux only")
        self.assertTrue(tcp.quick_ack(Wrapper(self.transport)))
        self.assertEqual(
            self.transport.socket.options, [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)]
        )

    def test_quick_ack_without_a_socket_does_nothing(self) -> None:
        self.assertFalse(tcp.quick_ack(object()))


class SessionQuickAckTests(ImapTestCase):
    async def test_acked_at_once_only_while_a_command_is_incomplete(self):
        proto = await self.session()
        acks: list[Any] = []
        self.patch(imap_server, "quick_ack", acks.append)
        proto.dataReceived(b"a APPEND INBOX {12}\r\n")  # waits for the literal
        self.assertEqual(len(acks), 1)
        proto.dataReceived(b"Subject: x\r\n")  # literal read, the final CRLF still to come
        self.assertEqual(len(acks), 2)
        out = await self.send(proto, b"\r\n")
        self.assertIn(b"a OK [APPENDUID", out)
        self.assertEqual(len(acks), 2)
        await self.send(proto, b"b NOOP\r\n")  # a whole command: nothing to hurry
        self.assertEqual(len(acks), 2)
