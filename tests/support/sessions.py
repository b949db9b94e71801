"""In-memory protocol sessions shared by the POP3 and IMAP tests: an in-memory TLS-capable
transport, and a test case with alice@example.com and a protocol factory over the store."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import attrs
from argon2 import PasswordHasher
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface import implementer

from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.guard import LoginGuard
from tests.support.store import StoreTestCase

PASSWORD = "s3cret pass"
# A cheap argon2id hash: the real parameters cost ~0.15 s per login.
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

Protocol = TypeVar("Protocol")
Factory = TypeVar("Factory")


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


class SessionTestCase(StoreTestCase, Generic[Protocol, Factory]):
    """A store with alice@example.com (password :data:`PASSWORD`) and a factory of
    ``factory_class`` built like the listener builds it, on a Clock."""

    factory_class: ClassVar[Any]
    settings: ClassVar[Any]
    greeting: ClassVar[bytes]  # how the server's greeting starts
    failure_delay = 0.0

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com", password_hash=CHEAP_HASH)
        self.clock = Clock()
        self.tls = object()  # stands for ServerTLS; SessionTransport only records it
        self.factory: Factory = self.make_factory()

    def make_factory(self, **settings: Any) -> Factory:
        """A factory over the test store; *settings* override the class's ``settings``."""
        from twisted.internet import reactor

        factory: Factory = self.factory_class(
            store=self.store,
            checker=AccountPasswordChecker(self.store, reactor),  # type: ignore[arg-type]
            guard=LoginGuard(self.store, self.clock, self.failure_delay),
            settings=attrs.evolve(self.settings, **settings),
            tls=self.tls,
            clock=self.clock,
        )
        return factory

    def connect(
        self, peer: str = "127.0.0.1", *, factory: Factory | None = None, **kwargs: Any
    ) -> tuple[Protocol, SessionTransport]:
        """A new session on an in-memory transport (greeting consumed)."""
        built: Any = factory or self.factory
        proto: Protocol = built.buildProtocol(None)
        transport = SessionTransport(peer, **kwargs)
        transport.protocol = proto
        proto.makeConnection(transport)  # type: ignore[attr-defined]
        assert transport.value().startswith(self.greeting), transport.value()
        transport.clear()
        self.connected(proto)
        return proto, transport

    def connected(self, proto: Protocol) -> None:
        """Called with each new session from :meth:`connect`."""

    async def send(self, proto: Any, data: bytes) -> bytes:
        """Feed client bytes, wait until every command is answered, return the output."""
        transport = proto.transport
        transport.clear()
        proto.dataReceived(data)
        await proto.when_idle()
        out: bytes = transport.value()
        transport.clear()
        return out
