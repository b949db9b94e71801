"""Fixtures for the POP3 tests: a store with an account, in-memory sessions, a client-side
decoder of POP3 responses."""

from __future__ import annotations

from typing import Any

import attrs
from argon2 import PasswordHasher
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface import implementer

from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.guard import LoginGuard
from a3mail.pop3.factory import POP3Factory, Pop3Settings
from a3mail.pop3.server import POP3Server
from tests.support.store import StoreTestCase

PASSWORD = "s3cret pass"
# A cheap argon2id hash: the real parameters cost ~0.15 s per login.
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

MESSAGE = (
    b"From: Bob <bob@remote.example>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"First line.\r\n"
    b".starts with a dot\r\n"
    b".\r\n"
    b"Last line.\r\n"
)


@implementer(ITLSTransport)
class SessionTransport(StringTransportWithDisconnection):
    """An in-memory transport: records startTLS, and pumps pull producers to the end at once
    (an infinitely fast client), as a real transport starts pulling on registration."""

    def __init__(self, peer: str = "127.0.0.1", *, pump: bool = True) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", peer, 40000))
        self.tls_started: list[Any] = []
        self.pump = pump
        self.aborted = False

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:
        self.tls_started.append(contextFactory)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        super().registerProducer(producer, streaming)
        if self.pump and not streaming:
            while self.producer is producer:
                producer.resumeProducing()

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


def decode_multiline(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Read one multi-line response as an RFC 1939 client does.

    Returns (status line, the unstuffed content, what follows the terminator).  Raises
    AssertionError if the data ends before the terminator.
    """
    status, sep, rest = data.partition(b"\r\n")
    assert sep, f"no status line in {data[:80]!r}"
    content = []
    pos = 0
    while True:
        end = rest.find(b"\r\n", pos)
        assert end >= 0, "the response ends before its terminator"
        line = rest[pos:end]
        pos = end + 2
        if line == b".":
            return status, b"".join(content), rest[pos:]
        content.append((line[1:] if line.startswith(b".") else line) + b"\r\n")


class Pop3TestCase(StoreTestCase):
    """A store with alice@example.com (password :data:`PASSWORD`) and a POP3 factory."""

    settings = Pop3Settings(hostname="pop.example.com", max_errors=5)
    failure_delay = 0.0

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com", password_hash=CHEAP_HASH)
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        self.clock = Clock()
        self.tls = object()  # stands for ServerTLS; SessionTransport only records it
        self.factory = self.make_factory()

    def make_factory(self, **settings: Any) -> POP3Factory:
        from twisted.internet import reactor

        return POP3Factory(
            store=self.store,
            checker=AccountPasswordChecker(self.store, reactor),  # type: ignore[arg-type]
            guard=LoginGuard(self.store, self.clock, self.failure_delay),
            settings=attrs.evolve(self.settings, **settings),
            tls=self.tls,  # type: ignore[arg-type]
            clock=self.clock,
        )

    async def deliver(self, data: bytes = MESSAGE, to: str = "alice@example.com") -> int:
        """Deliver a message; returns its UID."""
        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, [to])
        return int(result.uid)

    def connect(
        self, peer: str = "127.0.0.1", *, factory: POP3Factory | None = None, **kwargs: Any
    ) -> tuple[POP3Server, SessionTransport]:
        """A new session on an in-memory transport (greeting consumed)."""
        factory = factory or self.factory
        proto = factory.buildProtocol(None)
        transport = SessionTransport(peer, **kwargs)
        transport.protocol = proto
        proto.makeConnection(transport)
        assert transport.value().startswith(b"+OK ")
        transport.clear()
        return proto, transport

    async def send(self, proto: POP3Server, data: bytes) -> bytes:
        """Feed client bytes, wait until every command is answered, return the output."""
        transport = proto.transport
        transport.clear()
        proto.dataReceived(data)
        await proto.when_idle()
        out: bytes = transport.value()
        transport.clear()
        return out

    async def login(self, proto: POP3Server, user: str = "alice@example.com") -> bytes:
        """USER/PASS over a session that is allowed to send passwords."""
        proto.secure = True
        out = await self.send(proto, f"USER {user}\r\nPASS {PASSWORD}\r\n".encode())
        self.assertTrue(out.startswith(b"+OK Send the password.\r\n+OK Logged in"), out)
        return out

    async def session(self, **kwargs: Any) -> tuple[POP3Server, SessionTransport]:
        """A logged-in session."""
        proto, transport = self.connect(**kwargs)
        await self.login(proto)
        return proto, transport
