"""Fixtures for the SMTP tests: a store-backed listener driven in memory (StringTransport +
Clock), a scripted client, and a DNS table for deterministic SPF/DKIM/DMARC."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from zope.interface import alsoProvides, implementer

from a3mail.auth.passwords import hash_password
from a3mail.config import load_config
from a3mail.runtime import Runtime
from a3mail.smtp.authres import InboundVerifier, StaticResolver
from a3mail.smtp.factory import SMTPFactory, build_factory
from a3mail.smtp.server import SMTPServer
from a3mail.smtp.stats import SmtpStats
from tests.support.store import StoreTestCase

HOSTNAME = "mx.a3mail.test"
PASSWORD = "correct horse battery staple"
REPLY = re.compile(rb"^(\d{3})([ -])(.*)$")

#: SPF for example.net passes from 192.0.2.1 and fails from anywhere else; example.net asks
#: for DMARC p=reject.  example.org has SPF -all only (no DMARC).
DNS = {
    ("TXT", "example.net"): [b"v=spf1 ip4:192.0.2.1 -all"],
    ("TXT", "_dmarc.example.net"): [b"v=DMARC1; p=reject"],
    ("TXT", "example.org"): [b"v=spf1 -all"],
}


@implementer(ITLSTransport)
class TLSCapableTransport(StringTransport):
    """A StringTransport that can "start TLS": records the call and, from then on, provides
    ISSLTransport (no real handshake)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tls_started_with: Any = None
        self.paused = False

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:
        self.tls_started_with = contextFactory
        alsoProvides(self, ISSLTransport)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


@attrs.define
class Reply:
    """One parsed server reply."""

    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def status(self) -> str:
        """The enhanced status code of the last line ("" if none)."""
        match = re.match(r"^(\d\.\d{1,3}\.\d{1,3}) ", self.lines[-1])
        return match[1] if match else ""


def parse_replies(data: bytes) -> list[Reply]:
    """Split server output into replies (multi-line ones joined)."""
    out: list[Reply] = []
    current: list[str] = []
    assert data == b"" or data.endswith(b"\r\n"), data[-80:]
    for raw in data.split(b"\r\n")[:-1]:
        match = REPLY.match(raw)
        assert match, raw
        current.append(match[3].decode("utf-8", "replace"))
        if match[2] == b" ":
            out.append(Reply(int(match[1]), current))
            current = []
    assert not current, current
    return out


class Session:
    """A server connection driven in memory."""

    def __init__(self, protocol: SMTPServer, transport: TLSCapableTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self._read = 0

    def new_output(self) -> bytes:
        value = self.transport.value()
        out, self._read = value[self._read :], len(value)
        return out

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the server has processed everything it can (store work included)."""
        deadline = time.monotonic() + timeout
        while True:
            await deferLater(reactor, 0, lambda: None)  # type: ignore[arg-type]
            await _yield_asyncio()
            if not self.protocol._busy:
                await deferLater(reactor, 0, lambda: None)  # type: ignore[arg-type]
                if not self.protocol._busy:
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the server did not settle")

    async def send(self, data: bytes) -> list[Reply]:
        """Send raw bytes; return the replies they produced."""
        self.protocol.dataReceived(data)
        await self.settle()
        return parse_replies(self.new_output())

    async def command(self, line: str | bytes) -> Reply:
        """Send one command line; return its single reply."""
        raw = line.encode() if isinstance(line, str) else line
        replies = await self.send(raw + b"\r\n")
        assert len(replies) == 1, replies
        [reply] = replies
        return reply

    async def message(self, body: bytes) -> Reply:
        """DATA, the dot-stuffed body, the final dot; the reply to the dot."""
        start = await self.command("DATA")
        assert start.code == 354, start
        [reply] = await self.send(stuff(body) + b".\r\n")
        return reply

    async def login(self, address: str, password: str = PASSWORD) -> Reply:
        token = base64.b64encode(f"\0{address}\0{password}".encode()).decode()
        return await self.command(f"AUTH PLAIN {token}")

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


async def _yield_asyncio() -> None:
    await Deferred.fromFuture(asyncio.ensure_future(asyncio.sleep(0)))


def stuff(body: bytes) -> bytes:
    """Dot-stuff a CRLF message and make sure it ends with CRLF."""
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def simple_message(subject: str = "hello", body: str = "Hi there.") -> bytes:
    return (
        f"From: sender@example.com\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.com>\r\n\r\n{body}\r\n"
    ).encode()


class SmtpTestCase(StoreTestCase):
    """A store, a config, a Clock; :meth:`connect` opens an in-memory session."""

    overrides: dict[str, Any] = {}
    verifier: Any = None  # None: no inbound verification; "dns": a StaticResolver on DNS

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        settings = {"hostname": HOSTNAME, "auth.failure_delay": 2, **self.overrides}
        self.config = load_config(None, data_dir=self.data_dir, overrides=settings)
        self.clock = Clock()
        self.stats = SmtpStats()
        self.tls = object()  # recorded by TLSCapableTransport.startTLS only
        self.runtime = Runtime(config=self.config, store=self.store, tls=self.tls, reactor=reactor)
        self.factories: dict[str, SMTPFactory] = {}
        self.hashes: dict[str, str] = {}

    def make_verifier(self, records: dict[Any, Any] | None = None) -> InboundVerifier:
        return InboundVerifier(
            StaticResolver(DNS if records is None else records),
            reactor,
            authserv_id=HOSTNAME,
            timeout=5.0,
        )

    def factory(self, mode: str = "mx", verifier: Any = None) -> SMTPFactory:
        key = f"{mode}:{id(verifier)}"
        if key not in self.factories:
            self.factories[key] = build_factory(
                self.runtime,
                mode,
                clock=self.clock,
                verifier=verifier,
                stats=self.stats,
            )
            self.addCleanup(lambda f=self.factories[key]: f.context.reporter.idle())
        return self.factories[key]

    def connect(
        self,
        mode: str = "mx",
        *,
        peer: str = "192.0.2.1",
        tls: bool = False,
        verifier: Any = None,
        factory: SMTPFactory | None = None,
    ) -> Session:
        factory = factory or self.factory(mode, verifier)
        address = IPv4Address("TCP", peer, 40000)
        protocol = factory.buildProtocol(address)
        transport = TLSCapableTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.25", 25), peerAddress=address
        )
        if tls:
            alsoProvides(transport, ISSLTransport)
        protocol.makeConnection(transport)
        session = Session(protocol, transport)  # type: ignore[arg-type]
        greeting = parse_replies(session.new_output())
        assert greeting and greeting[0].code in (220, 421), greeting
        self.addCleanup(self._close, session)
        return session

    def _close(self, session: Session) -> None:
        if not session.transport.disconnecting:
            session.transport.loseConnection()
        session.protocol.connectionLost(None)

    async def greeted(self, mode: str = "mx", **kwargs: Any) -> Session:
        session = self.connect(mode, **kwargs)
        reply = await session.command("EHLO client.example.com")
        assert reply.code == 250, reply
        return session

    async def user(self, address: str, **kwargs: Any) -> Any:
        """An account with PASSWORD (hashed once per test run)."""
        if "hash" not in _HASH:
            _HASH["hash"] = hash_password(PASSWORD)
        return await self.make_account(address, password_hash=_HASH["hash"], **kwargs)

    async def inbox(self, address: str, mailbox: str = "INBOX") -> list[tuple[Any, bytes]]:
        """(info, bytes) of every message in a mailbox of *address*."""
        account = await self.store.accounts.get(address)
        box = await self.store.mailboxes.get(account.id, mailbox)
        infos = await self.store.messages.list(account.id, box.id)
        return [(info, await self.store.messages.read(info)) for info in infos]

    def tmp_files(self) -> list[Path]:
        return sorted((self.data_dir / "mail" / "tmp").iterdir())


_HASH: dict[str, str] = {}
