"""Fixtures for the outbound tests: a scripted SMTP server on loopback, and helpers to queue
messages and run the queue runner's rounds by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineReceiver

from a3mail.outbound.mx import MXFinder
from a3mail.outbound.runner import QueueRunner, RunnerSettings
from a3mail.smtp.dns import StaticResolver
from tests.support.store import StoreTestCase

MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hello there\r\n"
    b"Message-ID: <m1@example.com>\r\n\r\nHi Bob.\r\n.leading dot\r\n"
)


class ScriptedSMTP(LineReceiver):
    """A small ESMTP server: PIPELINING and SIZE, replies scripted by its factory."""

    delimiter = b"\r\n"

    def connectionMade(self) -> None:
        self.factory.connections += 1
        self.in_data = False
        self.lines: list[bytes] = []
        self.sender = b""
        self.recipients: list[bytes] = []
        self.sendLine(b"220 fake.test ESMTP")

    def lineReceived(self, line: bytes) -> None:
        factory = self.factory
        if self.in_data:
            if line == b".":
                self.in_data = False
                code = factory.next_data_reply()
                factory.data_ends += 1
                if not code:  # stall: never answer the end of data
                    return
                if code.startswith(b"250"):
                    body = b"".join(
                        (ln[1:] if ln.startswith(b".") else ln) + b"\r\n" for ln in self.lines
                    )
                    factory.received.append((self.sender, list(self.recipients), body))
                self.sendLine(code)
            else:
                self.lines.append(line)
            return
        factory.commands.append(line)
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.sendLine(
                b"250-fake.test\r\n250-PIPELINING\r\n250-SIZE %d\r\n250 8BITMIME"
                % factory.size_limit
            )
        elif verb == b"MAIL":
            self.sender = line[10:].split(b">")[0].lstrip(b"<")
            self.recipients = []
            self.sendLine(factory.mail_reply)
        elif verb == b"RCPT":
            address = line[8:].split(b">")[0].lstrip(b"<")
            code = factory.rcpt_reply(address)
            if code.startswith(b"250"):
                self.recipients.append(address)
            self.sendLine(code)
        elif verb == b"DATA":
            self.in_data = True
            self.lines = []
            self.sendLine(b"354 go ahead")
        elif verb == b"RSET":
            self.sendLine(b"250 2.0.0 ok")
        elif verb == b"QUIT":
            self.sendLine(b"221 2.0.0 bye")
            self.transport.loseConnection()
        else:
            self.sendLine(b"502 5.5.1 unknown")


class ScriptedFactory(protocol.ServerFactory):
    """Records commands and accepted messages; *data_replies* are used in turn (the last
    one repeats; b"" = never answer), *rcpt* maps an address to its RCPT reply (250)."""

    protocol = ScriptedSMTP

    def __init__(self, data_replies: list[bytes] | None = None) -> None:
        self.data_replies = list(data_replies or [b"250 2.0.0 queued"])
        self.rcpt: dict[bytes, bytes] = {}
        self.received: list[tuple[bytes, list[bytes], bytes]] = []
        self.commands: list[bytes] = []
        self.connections = 0
        self.data_ends = 0
        self.mail_reply = b"250 2.1.0 ok"
        self.size_limit = 10000000

    def next_data_reply(self) -> bytes:
        if len(self.data_replies) > 1:
            return self.data_replies.pop(0)
        return self.data_replies[0]

    def rcpt_reply(self, address: bytes) -> bytes:
        return self.rcpt.get(address, b"250 2.1.5 ok")


class OutboundTestCase(StoreTestCase):
    """A store, a scripted server on loopback for example.net, and a runner for it."""

    def listen(self, factory: ScriptedFactory) -> int:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    def make_runner(
        self, port: int, store: Any = None, worker: str = "w1", **settings: Any
    ) -> QueueRunner:
        finder = MXFinder(
            StaticResolver(), reactor, timeout=5, static={"example.net": [f"127.0.0.1:{port}"]}
        )
        options: dict[str, Any] = {"helo_name": "out.a3mail.test", "connect_timeout": 5}
        options.update(settings)
        return QueueRunner(
            store or self.store, reactor, finder, RunnerSettings(**options), worker=worker
        )

    async def queue(
        self,
        sender: str = "alice@example.com",
        recipients: tuple[str, ...] = ("bob@example.net",),
        data: bytes = MESSAGE,
    ) -> list[int]:
        blob = await self.store.incoming(data)
        return await self.store.queue.enqueue(blob, sender, list(recipients), keep_source=False)

    async def run_round(self, runner: QueueRunner, lease: float = 60.0) -> int:
        """Lease every due entry for *runner* and deliver them; returns how many."""
        items = await runner.store.outbound.lease(runner.worker, 1000, lease)
        for item in items:
            await runner.deliver(item)
        return len(items)

    def queue_files(self) -> list[str]:
        directory = self.data_dir / "mail" / "queue"
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def wait_until(predicate: Callable[[], bool]) -> Any:
    """A Deferred firing once *predicate* holds (polled on the reactor)."""
    from twisted.internet import task

    async def poll() -> None:
        while not predicate():
            await task.deferLater(reactor, 0.01, lambda: None)

    from twisted.internet.defer import Deferred

    return Deferred.fromCoroutine(poll())
