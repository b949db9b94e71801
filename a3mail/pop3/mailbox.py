"""The POP3 maildrop: a fixed snapshot of an account's INBOX for one session.

RFC 1939 fixes the maildrop for the session: the message list is taken at login, message
numbers never change, and mail delivered later shows up in the next session.  DELE only
marks; :meth:`Maildrop.commit` (at QUIT) removes the marked messages in ONE store expunge,
which announces it on the event bus so IMAP sessions see it at once.

Unique ids are ``<uidvalidity>.<uid>``: stable for the life of the message and the same
pair IMAP shows, so both views of the mailbox agree.

The class also provides Twisted's ``IMailboxPOP3`` (0-based indexes), which lets the
regression tests run Twisted's own, unpatched ``POP3`` over the very same maildrop.
"""

from __future__ import annotations

from typing import BinaryIO, overload

import attrs
from twisted.internet.defer import Deferred
from twisted.mail.interfaces import IMailboxPOP3
from zope.interface import implementer

from a3mail.store import Store
from a3mail.store.names import INBOX
from a3mail.store.records import Mailbox, MessageInfo


class NoSuchMessage(Exception):
    """The message number is out of range or the message is marked deleted."""

    def __init__(self, reason: str, *, deleted: bool = False) -> None:
        super().__init__(reason)
        self.deleted = deleted


@attrs.define
class Entry:
    """One message of the maildrop."""

    number: int
    info: MessageInfo
    unique_id: str
    deleted: bool = False

    @property
    def size(self) -> int:
        """The exact stored size in octets (what RETR sends, before dot-stuffing)."""
        return self.info.size


def unique_id(mailbox: Mailbox, info: MessageInfo) -> str:
    """The UIDL of a message: ``<uidvalidity>.<uid>``."""
    return f"{mailbox.uidvalidity}.{info.uid}"


@implementer(IMailboxPOP3)
class Maildrop:
    """The INBOX of one account as one POP3 session sees it."""

    loginDelay = 0
    messageExpiration = None

    def __init__(self, store: Store, mailbox: Mailbox, messages: list[MessageInfo]) -> None:
        self.store = store
        self.mailbox = mailbox
        self.entries = [
            Entry(number, info, unique_id(mailbox, info))
            for number, info in enumerate(messages, start=1)
        ]

    @classmethod
    async def load(cls, store: Store, account_id: int) -> Maildrop:
        """Snapshot the account's INBOX now."""
        mailbox = await store.mailboxes.get(account_id, INBOX)
        messages = await store.messages.list(account_id, mailbox.id)
        return cls(store, mailbox, messages)

    # -- what the session sees (message numbers are 1-based) ----------------------------

    def live(self) -> list[Entry]:
        """The messages not marked deleted, in order."""
        return [e for e in self.entries if not e.deleted]

    def stat(self) -> tuple[int, int]:
        """(number of messages, total octets), deleted ones excluded."""
        live = self.live()
        return len(live), sum(e.size for e in live)

    def get(self, number: int) -> Entry:
        """The message with this number; :class:`NoSuchMessage` if absent or deleted."""
        if not 1 <= number <= len(self.entries):
            raise NoSuchMessage("no such message")
        entry = self.entries[number - 1]
        if entry.deleted:
            raise NoSuchMessage("message is deleted", deleted=True)
        return entry

    def delete(self, number: int) -> Entry:
        """Mark a message deleted (it stays until :meth:`commit`)."""
        entry = self.get(number)
        entry.deleted = True
        return entry

    def reset(self) -> None:
        """Unmark every message marked deleted."""
        for entry in self.entries:
            entry.deleted = False

    def deleted_uids(self) -> list[int]:
        """UIDs of the messages marked deleted."""
        return [e.info.uid for e in self.entries if e.deleted]

    def open(self, entry: Entry) -> BinaryIO:
        """The stored bytes of a message (raises OSError if it has gone meanwhile)."""
        return self.store.messages.open(entry.info)

    def commit(self) -> Deferred[list[int]]:
        """Remove the marked messages in one expunge; fires with the UIDs removed."""
        return self.store.messages.expunge(
            self.mailbox.account_id, self.mailbox.id, self.deleted_uids(), only_deleted=False
        )

    # -- twisted.mail.interfaces.IMailboxPOP3 (0-based indexes) ---------------------------

    @overload
    def listMessages(self) -> list[int]: ...

    @overload
    def listMessages(self, i: int) -> int: ...

    def listMessages(self, i: int | None = None) -> int | list[int]:
        """Sizes of all messages (0 for deleted ones), or of one."""
        if i is None:
            return [0 if e.deleted else e.size for e in self.entries]
        entry = self._at(i)
        return 0 if entry.deleted else entry.size

    def getMessage(self, index: int) -> BinaryIO:
        """The file of a message."""
        return self.open(self._live_at(index))

    def getUidl(self, index: int) -> bytes:
        """The unique id of a message."""
        return self._at(index).unique_id.encode("ascii")

    def deleteMessage(self, index: int) -> None:
        """Mark a message deleted."""
        self._live_at(index).deleted = True

    def undeleteMessages(self) -> None:
        """Unmark every deleted message."""
        self.reset()

    def sync(self) -> Deferred[list[int]]:
        """Commit the deletions (see :meth:`commit`)."""
        return self.commit()

    def _at(self, index: int) -> Entry:
        if not 0 <= index < len(self.entries):
            raise ValueError("no such message")
        return self.entries[index]

    def _live_at(self, index: int) -> Entry:
        entry = self._at(index)
        if entry.deleted:
            raise ValueError("message is deleted")
        return entry
