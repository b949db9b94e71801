"""Fixtures for the POP3 tests: a store with an account, in-memory sessions, a client-side
decoder of POP3 responses."""

from __future__ import annotations

from typing import Any

from a3mail.pop3.factory import POP3Factory, Pop3Settings
from a3mail.pop3.server import POP3Server
from tests.support.sessions import CHEAP_HASH, PASSWORD, SessionTestCase, SessionTransport

__all__ = ["CHEAP_HASH", "MESSAGE", "PASSWORD", "Pop3TestCase", "SessionTransport"]

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


class Pop3TestCase(SessionTestCase[POP3Server, POP3Factory]):
    """A store with alice@example.com (password :data:`PASSWORD`) and a POP3 factory."""

    factory_class = POP3Factory
    settings = Pop3Settings(hostname="pop.example.com", max_errors=5)
    greeting = b"+OK "

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")

    async def deliver(self, data: bytes = MESSAGE, to: str = "alice@example.com") -> int:
        """Deliver a message; returns its UID."""
        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(blob, [to])
        return int(result.uid)

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
