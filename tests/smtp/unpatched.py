"""twisted.mail's ESMTP as shipped, wired to an in-memory delivery with asynchronous
recipient checks (like any real server's: a database lookup), so that the security
regression tests can show each bug on the unpatched class next to our fix."""

from __future__ import annotations

from typing import Any

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.mail import smtp
from twisted.mail.imap4 import PLAINCredentials
from zope.interface import implementer

from tests.smtp.support import TLSCapableTransport


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, delivery: MemoryDelivery, recipient: str) -> None:
        self.delivery = delivery
        self.recipient = recipient
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> Deferred[None]:
        if self.recipient in self.delivery.failing:
            return Deferred.fromFuture(_failed_future())
        self.delivery.messages.append((self.recipient, b"\r\n".join(self.lines)))
        return succeed(None)

    def connectionLost(self) -> None:
        pass


def _failed_future() -> Any:
    import asyncio

    future = asyncio.get_event_loop().create_future()
    future.set_exception(OSError("mailbox full"))
    return future


@implementer(smtp.IMessageDelivery)
class MemoryDelivery:
    """Accepts mail for *known* recipients, checked asynchronously; stores it in memory.
    Recipients in *failing* fail at end of data (e.g. over quota)."""

    def __init__(self, known: set[str], failing: set[str] | None = None) -> None:
        self.known = known
        self.failing = failing or set()
        self.messages: list[tuple[str, bytes]] = []
        self.senders: list[str] = []
        self.recipients: list[str] = []

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> None:
        return None

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        self.senders.append(str(origin))
        return origin

    def validateTo(self, user: smtp.User) -> Deferred[Any]:
        address = str(user.dest)
        self.recipients.append(address)

        def check() -> Any:
            if address not in self.known:
                raise smtp.SMTPBadRcpt(user)
            return lambda: _Message(self, address)

        return deferLater(reactor, 0.001, check)  # type: ignore[arg-type]


@implementer(IRealm)
class _Realm:
    def __init__(self, delivery: MemoryDelivery) -> None:
        self.delivery = delivery

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
        return smtp.IMessageDelivery, self.delivery, lambda: None


class Unpatched:
    """One unpatched ESMTP connection in memory (with STARTTLS and AUTH PLAIN enabled)."""

    def __init__(self, delivery: MemoryDelivery) -> None:
        checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")
        self.server = smtp.ESMTP({b"PLAIN": PLAINCredentials}, contextFactory=object())
        self.server.delivery = delivery
        self.server.portal = Portal(_Realm(delivery), [checker])
        self.server.host = b"twisted.example"
        self.transport = TLSCapableTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.25", 25),
            peerAddress=IPv4Address("TCP", "192.0.2.1", 4000),
        )
        self.server.makeConnection(self.transport)
        self.delivery = delivery

    async def send(self, data: bytes, wait: float = 0.05) -> list[int]:
        """Feed bytes, let asynchronous checks finish, return the reply codes so far."""
        self.transport.clear()
        self.server.dataReceived(data)
        await deferLater(reactor, wait, lambda: None)  # type: ignore[arg-type]
        return [
            int(line[:3]) for line in self.transport.value().split(b"\r\n") if line[3:4] == b" "
        ]

    def close(self) -> None:
        self.server.setTimeout(None)
        self.server.connectionLost(None)
