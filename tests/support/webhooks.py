"""Webhook test helpers: a real local HTTP receiver, a fake resolver, a message to deliver."""

from __future__ import annotations

import time
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import implementer

from a3mail.config import load_config
from a3mail.runtime import Runtime

MESSAGE = (
    b"From: Bob Sender <bob@remote.example>\r\n"
    b"To: Alice <alice@example.com>, carol@example.com\r\n"
    b"Cc: dave@example.com\r\n"
    b"Subject: Webhook test\r\n"
    b"Message-ID: <wh-1@remote.example>\r\n"
    b"Date: Wed, 15 Jan 2025 10:30:00 +0000\r\n"
    b"\r\n"
    b"Your code is 493817.\r\n"
)


def parse(data: Any) -> dict[str, Any]:
    """The JSON parse the store indexes (as the SMTP server passes it)."""
    from a3mail.mime import parse_message

    return parse_message(data).to_json()


@attrs.frozen
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Collect(Resource):
    isLeaf = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__()
        self.receiver = receiver

    def render(self, request: Any) -> Any:
        return self.receiver.handle(request)


class _TrackingSite(Site):
    """A Site that remembers its open connections so the test can close them all."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource, timeout=None)
        self.open: dict[Any, tuple[Any, defer.Deferred[None]]] = {}

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        closed: defer.Deferred[None] = defer.Deferred()
        made, lost = protocol.makeConnection, protocol.connectionLost

        def make_connection(transport: Any) -> None:
            self.open[protocol] = (transport, closed)
            made(transport)

        def connection_lost(reason: Any) -> None:
            lost(reason)
            self.open.pop(protocol, None)
            closed.callback(None)

        protocol.makeConnection = make_connection
        protocol.connectionLost = connection_lost
        return protocol


class Receiver:
    """An HTTP server on 127.0.0.1 (a free port) recording every request.

    ``codes`` are the statuses of the next responses (then 200); ``hang`` makes it never
    answer.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.codes: list[int] = []
        self.hang = False
        self.site = _TrackingSite(_Collect(self))
        self.port: Any = None
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    async def start(self) -> Receiver:
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self.port = await endpoint.listen(self.site)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}/hook"

    def handle(self, request: Any) -> Any:
        headers = {
            k.decode().lower(): v[-1].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        self.requests.append(
            Received(
                request.method.decode(), request.path.decode(), headers, request.content.read()
            )
        )
        for waiter in list(self._waiters):
            if len(self.requests) >= waiter[0]:
                self._waiters.remove(waiter)
                waiter[1].callback(None)
        if self.hang:
            return NOT_DONE_YET
        request.setResponseCode(self.codes.pop(0) if self.codes else 200)
        return b"ok"

    def wait(self, count: int, timeout: float = 10.0) -> defer.Deferred[None]:
        """Fires once *count* requests arrived (fails after *timeout* real seconds)."""
        if len(self.requests) >= count:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((count, d))
        return d.addTimeout(timeout, reactor)

    async def stop(self) -> None:
        opened = list(self.site.open.values())
        for transport, _ in opened:
            transport.abortConnection()
        await defer.DeferredList([closed for _, closed in opened])
        if self.port is not None:
            await self.port.stopListening()


@implementer(IHostnameResolver)
class FakeResolver:
    """Resolves names from a table (unknown names resolve to nothing)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IResolutionReceiver:
        self.asked.append(hostName)
        resolutionReceiver.resolutionBegan(None)
        for address in self.table.get(hostName, []):
            kind = IPv6Address if ":" in address else IPv4Address
            resolutionReceiver.addressResolved(kind("TCP", address, portNumber))
        resolutionReceiver.resolutionComplete()
        return resolutionReceiver


def wall_clock(ahead: float = 60.0) -> Clock:
    """A Clock set *ahead* seconds past the current time.  The dispatcher compares its clock
    with times the database wrote (``next_attempt_at`` of new rows is the database's
    ``now()``): being ahead makes every row the test creates due at once."""
    clock = Clock()
    clock.advance(float(int(time.time() + ahead)))  # whole seconds: exact in PostgreSQL
    return clock


def make_runtime(store: Any, **webhooks: Any) -> Runtime:
    """A Runtime over *store* with ``[webhooks]`` settings (private targets allowed)."""
    settings = {"allow_private_targets": True, "poll_interval": "1h", **webhooks}
    config = load_config(None, overrides={"webhooks": settings})
    return Runtime(config=config, store=store, tls=None, reactor=reactor)  # type: ignore[arg-type]
