"""twisted.mail's IMAP4Server as shipped, over a small in-memory account, so that the
regression tests can show each bug of the unpatched class next to our fix.

The mailbox answers like a real backend would: :class:`MemoryAccount` can answer SELECT
asynchronously (a database lookup), and messages are parsed with the standard library.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.mail import imap4
from zope.interface import implementer

from tests.pop3.support import SessionTransport


@implementer(imap4.IMessage)
class MemoryMessage:
    """One message (or MIME part) held as bytes."""

    def __init__(self, raw: bytes, uid: int, flags: list[str] | None = None) -> None:
        self.raw = raw
        self.uid = uid
        self.flags = flags if flags is not None else []
        self.parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
        _header, sep, body = raw.partition(b"\r\n\r\n")
        self.body = body if sep else b""

    def getHeaders(self, negate: bool, *names: str) -> dict[str, str]:
        wanted = {n.lower() for n in names}
        return {
            k.lower(): str(v)
            for k, v in self.parsed.items()
            if not names or ((k.lower() in wanted) != negate)
        }

    def getBodyFile(self) -> BytesIO:
        return BytesIO(self.body)

    def getSize(self) -> int:
        return len(self.raw)

    def getUID(self) -> int:
        return self.uid

    def getFlags(self) -> list[str]:
        return self.flags

    def getInternalDate(self) -> str:
        return "Mon, 07 Feb 1994 21:52:25 -0800"

    def isMultipart(self) -> bool:
        return self.parsed.is_multipart()

    def getSubPart(self, part: int) -> MemoryMessage:
        sub = self.parsed.get_payload()[part]
        return MemoryMessage(sub.as_bytes().replace(b"\n", b"\r\n"), 0)


@implementer(imap4.IMailbox, imap4.ICloseableMailbox)
class MemoryMailbox:
    """A mailbox of :class:`MemoryMessage` s."""

    def __init__(self) -> None:
        self.messages: list[MemoryMessage] = []
        self.listeners: list[Any] = []
        self.next_uid = 1

    def add(self, raw: bytes, flags: list[str] | None = None) -> None:
        self.messages.append(MemoryMessage(raw, self.next_uid, flags))
        self.next_uid += 1

    # IMailboxInfo / IMailbox
    def getFlags(self) -> list[str]:
        return ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]

    def getHierarchicalDelimiter(self) -> str:
        return "/"

    def getUIDValidity(self) -> int:
        return 42

    def getUIDNext(self) -> int:
        return self.next_uid

    def getUID(self, message: int) -> int:
        return self.messages[message - 1].uid

    def getMessageCount(self) -> int:
        return len(self.messages)

    def getRecentCount(self) -> int:
        return 0

    def getUnseenCount(self) -> int:
        return sum(1 for m in self.messages if "\\Seen" not in m.flags)

    def isWriteable(self) -> bool:
        return True

    def destroy(self) -> None:
        pass

    def requestStatus(self, names: Any) -> Deferred[dict[str, int]]:
        return succeed({"MESSAGES": len(self.messages)})

    def addListener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def removeListener(self, listener: Any) -> None:
        self.listeners.remove(listener)

    def addMessage(self, message: Any, flags: Any = (), date: Any = None) -> Deferred[None]:
        self.add(message.read(), list(flags))
        return succeed(None)

    def expunge(self) -> list[int]:
        gone = [m for m in self.messages if "\\Deleted" in m.flags]
        self.messages = [m for m in self.messages if m not in gone]
        return [m.uid for m in gone]

    def fetch(self, messages: Any, uid: bool) -> list[tuple[int, MemoryMessage]]:
        if not self.messages:
            return []
        messages.last = len(self.messages) if not uid else self.messages[-1].uid
        return [
            (seq, msg)
            for seq, msg in enumerate(self.messages, 1)
            if (msg.uid if uid else seq) in messages
        ]

    def store(self, messages: Any, flags: Any, mode: int, uid: bool) -> dict[int, list[str]]:
        out = {}
        for seq, msg in self.fetch(messages, uid):
            if mode > 0:
                msg.flags = sorted(set(msg.flags) | set(flags))
            elif mode < 0:
                msg.flags = [f for f in msg.flags if f not in flags]
            else:
                msg.flags = list(flags)
            out[seq] = msg.flags
        return out

    def close(self) -> None:
        pass


class MemoryAccount(imap4.MemoryAccount):
    """An account whose SELECT answers after a reactor turn when *slow_select*, like a
    database-backed account."""

    slow_select = False

    def _emptyMailbox(self, name: str, id: int) -> MemoryMailbox:
        return MemoryMailbox()

    def select(self, name: str, rw: bool = True) -> Any:
        mailbox = super().select(name, rw)
        if self.slow_select:
            return deferLater(reactor, 0.01, lambda: mailbox)
        return mailbox


def sync_scheduler(iterator: Iterator[Any]) -> Deferred[None]:
    """Run Twisted's cooperative FETCH iterator to the end at once."""
    for _ in iterator:
        pass
    return succeed(None)


def twisted_session(
    account: MemoryAccount | None = None, *, logged_in: bool = True
) -> tuple[imap4.IMAP4Server, SessionTransport]:
    """An unpatched IMAP4Server on an in-memory transport (greeting cleared)."""
    server = imap4.IMAP4Server(contextFactory=object(), scheduler=sync_scheduler)
    server.timeOut = None  # no timer on the global reactor
    transport = SessionTransport()
    transport.protocol = server
    server.makeConnection(transport)
    if logged_in:
        server.account = account or MemoryAccount(b"alice")
        server.state = "auth"
    transport.clear()
    return server, transport


async def settle() -> None:
    """Let Deferreds scheduled on the reactor (slow_select) fire."""
    await deferLater(reactor, 0.05, lambda: None)
