"""Fixtures for the IMAP tests: a store with an account, in-memory sessions."""

from __future__ import annotations

import re
from typing import Any

from a3mail.imap.factory import IMAPFactory, ImapSettings
from a3mail.imap.server import IMAPServer
from tests.support.sessions import CHEAP_HASH, PASSWORD, SessionTestCase, SessionTransport

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


class ImapTestCase(SessionTestCase[IMAPServer, IMAPFactory]):
    """A store with alice@example.com (password :data:`PASSWORD`) and an IMAP factory."""

    factory_class = IMAPFactory
    settings = ImapSettings(max_line=2048, max_literal=4096, max_append=1024 * 1024)
    greeting = b"* OK "

    async def deliver(self, data: bytes = MESSAGE, to: str = "alice@example.com") -> int:
        """Deliver a message to the INBOX; returns its UID."""
        from a3mail.smtp.delivery import parse_json

        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, [to], parse=parse_json)
        return int(result.uid)

    def count_calls(self, owner: Any, name: str) -> list[Any]:
        """Every call of *owner.name* from now on (e.g. what a view reads from the index)."""
        calls: list[Any] = []
        original = getattr(owner, name)

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return original(*args, **kwargs)

        self.patch(owner, name, counting)
        return calls

    def connected(self, proto: IMAPServer) -> None:
        """Close each session at cleanup (no dirty reactor)."""
        self.addCleanup(self._drop, proto)

    def _drop(self, proto: IMAPServer) -> None:
        if not proto._closed:
            proto.connectionLost()

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
