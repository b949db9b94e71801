"""Fixtures for the IMAP tests: a store with an account, in-memory sessions."""

from __future__ import annotations

import re
from typing import Any

import attrs
from twisted.internet.task import Clock

from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.guard import LoginGuard
from a3mail.imap.factory import IMAPFactory, ImapSettings
from a3mail.imap.server import IMAPServer
from tests.pop3.support import CHEAP_HASH, PASSWORD, SessionTransport
from tests.support.store import StoreTestCase

__all__ = ["CHEAP_HASH", "MESSAGE", "PASSWORD", "ImapTestCase", "SessionTransport"]

MESSAGE = (
    b"From: Bob <bob@remote.example>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <m1@remote.example>\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"\r\n"
    b"First line.\r\n"
    b"Second line.\r\n"
)


def message(subject: str = "hello", body: str = "Body text.") -> bytes:
    """A small message with the given subject and body."""
    return MESSAGE.replace(b"Subject: hello", b"Subject: " + subject.encode()).replace(
        b"First line.\r\nSecond line.\r\n", body.encode() + b"\r\n"
    )


class ImapTestCase(StoreTestCase):
    """A store with alice@example.com (password :data:`PASSWORD`) and an IMAP factory."""

    settings = ImapSettings(max_line=2048, max_literal=4096, max_append=1024 * 1024)
    failure_delay = 0.0

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com", password_hash=CHEAP_HASH)
        self.clock = Clock()
        self.tls = object()
        self.factory = self.make_factory()

    def make_factory(self, **settings: Any) -> IMAPFactory:
        from twisted.internet import reactor

        return IMAPFactory(
            store=self.store,
            checker=AccountPasswordChecker(self.store, reactor),  # type: ignore[arg-type]
            guard=LoginGuard(self.store, self.clock, self.failure_delay),
            settings=attrs.evolve(self.settings, **settings),
            tls=self.tls,  # type: ignore[arg-type]
            clock=self.clock,
        )

    async def deliver(self, data: bytes = MESSAGE, to: str = "alice@example.com") -> int:
        """Deliver a message to the INBOX; returns its UID."""
        from a3mail.smtp.delivery import parse_json

        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, [to], parse=parse_json)
        return int(result.uid)

    def connect(
        self, peer: str = "127.0.0.1", *, factory: IMAPFactory | None = None, **kwargs: Any
    ) -> tuple[IMAPServer, SessionTransport]:
        """A new session on an in-memory transport (greeting consumed)."""
        factory = factory or self.factory
        proto = factory.buildProtocol(None)
        assert isinstance(proto, IMAPServer)
        transport = SessionTransport(peer, **kwargs)
        transport.protocol = proto
        proto.makeConnection(transport)
        assert transport.value().startswith(b"* OK "), transport.value()
        transport.clear()
        self.addCleanup(self._drop, proto)
        return proto, transport

    def _drop(self, proto: IMAPServer) -> None:
        if not proto._closed:
            proto.connectionLost()

    async def send(self, proto: IMAPServer, data: bytes) -> bytes:
        """Feed client bytes, wait until every command is answered, return the output."""
        transport = proto.transport
        transport.clear()
        proto.dataReceived(data)
        await proto.when_idle()
        out: bytes = transport.value()
        transport.clear()
        return out

    async def session(self, *, select: str | None = "INBOX", **kwargs: Any) -> IMAPServer:
        """A logged-in session (TLS assumed), INBOX selected unless *select* is None."""
        proto, _ = self.connect(**kwargs)
        proto.secure = True
        out = await self.send(proto, f'L1 LOGIN alice@example.com "{PASSWORD}"\r\n'.encode())
        assert b"L1 OK" in out, out
        if select:
            out = await self.send(proto, f"S1 SELECT {select}\r\n".encode())
            assert b"S1 OK" in out, out
        return proto


def tagged(out: bytes, tag: bytes) -> bytes:
    """The tagged response line of *tag* (without CRLF)."""
    match = re.search(rb"(?m)^" + re.escape(tag) + rb" (.*)\r$", out)
    assert match is not None, f"no {tag!r} response in {out!r}"
    return match.group(1)
