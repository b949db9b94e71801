"""Typed records the store returns (never raw database rows), and the store's errors."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from a3mail.store.db import StoreError

# -- errors ----------------------------------------------------------------------------------


class NotFound(StoreError):
    """The named object does not exist (or is not visible to the caller)."""


class AlreadyExists(StoreError):
    """An object with that name exists already."""


class Conflict(StoreError):
    """The change is refused in the current state (e.g. a domain that still has users)."""


class OverQuota(StoreError):
    """The change would take an account over its quota."""


class LimitExceeded(StoreError):
    """A domain limit (max_users, max_quota) would be exceeded."""


class InvalidName(StoreError):
    """A mailbox name or address that a3mail does not accept."""


# -- flags -----------------------------------------------------------------------------------


class Flag(enum.IntFlag):
    """IMAP system flags as stored in ``messages.flags``."""

    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16


SYSTEM_FLAGS: dict[str, Flag] = {
    "\\seen": Flag.SEEN,
    "\\answered": Flag.ANSWERED,
    "\\flagged": Flag.FLAGGED,
    "\\deleted": Flag.DELETED,
    "\\draft": Flag.DRAFT,
}
_FLAG_NAMES = {Flag.SEEN: "\\Seen", Flag.ANSWERED: "\\Answered", Flag.FLAGGED: "\\Flagged"}
_FLAG_NAMES |= {Flag.DELETED: "\\Deleted", Flag.DRAFT: "\\Draft"}


def split_flags(names: Iterable[str]) -> tuple[int, tuple[str, ...]]:
    """Split IMAP flag names into the system-flag bits and the (deduplicated) keywords."""
    bits = 0
    keywords: list[str] = []
    for name in names:
        flag = SYSTEM_FLAGS.get(name.lower())
        if flag is not None:
            bits |= flag
        elif name.startswith("\\"):
            continue  # \Recent and unknown system flags are not stored
        elif name not in keywords:
            keywords.append(name)
    return bits, tuple(keywords)


def flag_names(bits: int, keywords: Iterable[str] = ()) -> tuple[str, ...]:
    """IMAP flag names for stored bits and keywords."""
    names = [text for flag, text in _FLAG_NAMES.items() if bits & flag]
    return (*names, *keywords)


# -- records ---------------------------------------------------------------------------------


@attrs.frozen
class Domain:
    """A mail domain a3mail receives mail for."""

    id: int
    name: str
    enabled: bool
    max_users: int | None
    max_quota: int | None
    created_at: datetime
    users_count: int = 0
    tempmail: bool = False  # offers temp addresses (the temp-mail API)


@attrs.frozen
class Account:
    """A mail user."""

    id: int
    domain_id: int
    address: str
    display_name: str
    role: str
    enabled: bool
    quota_bytes: int
    used_bytes: int
    message_count: int
    attributes: dict[str, Any]
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = attrs.field(default=None, repr=False)

    @property
    def domain(self) -> str:
        """The domain part of the address."""
        return self.address.rpartition("@")[2]


@attrs.frozen
class Alias:
    """One alias target."""

    id: int
    domain_id: int
    address: str
    target: str


@attrs.frozen
class Mailbox:
    """An IMAP mailbox (folder) of an account."""

    id: int
    account_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    message_count: int
    unseen_count: int
    total_bytes: int


@attrs.frozen
class MailboxRef:
    """The mailbox a message was appended to: what an ``APPENDUID`` answer names, and its
    HIGHESTMODSEQ just after (the new message's modseq)."""

    id: int
    name: str
    uidvalidity: int
    highestmodseq: int


@attrs.frozen
class MessageInfo:
    """The index entry of one message (without the cached parse)."""

    id: int
    mailbox_id: int
    account_id: int
    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]
    internal_date: datetime
    size: int
    blob_path: str
    header_size: int
    sent_date: datetime | None
    subject: str
    from_addr: str
    to_addr: str
    message_id: str | None
    has_attachments: bool
    verification_code: str | None
    preview: str

    @property
    def flag_names(self) -> tuple[str, ...]:
        """IMAP flag names of this message."""
        return flag_names(self.flags, self.keywords)


@attrs.frozen
class MessageContent:
    """A message's cached parse: envelope, body structure, attachments, text and HTML."""

    info: MessageInfo
    parsed: dict[str, Any]
    text: str
    html: str


class DeliveryStatus(enum.Enum):
    """The outcome of delivering a message to one recipient."""

    DELIVERED = "delivered"
    OVER_QUOTA = "over_quota"
    UNKNOWN = "unknown"
    DISABLED = "disabled"


@attrs.frozen
class DeliveryResult:
    """What happened to one recipient of :meth:`Messages.deliver`."""

    recipient: str
    status: DeliveryStatus
    account_id: int | None = None
    mailbox_id: int | None = None
    uid: int | None = None


@attrs.frozen
class CopyResult:
    """UID mapping of a copy or move (for COPYUID)."""

    uidvalidity: int
    source_uids: tuple[int, ...]
    dest_uids: tuple[int, ...]


@attrs.frozen
class FlagChange:
    """A message whose flags were changed, with its new flags and modseq."""

    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]


@attrs.frozen
class ApiKey:
    """An API key (the tokens themselves are never stored)."""

    id: int
    key_id: str
    account_id: int | None
    name: str
    key_prefix: str
    permissions: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    account_address: str | None = None


@attrs.frozen
class AuditEntry:
    """One audit log record."""

    id: int
    at: datetime
    event_type: str
    severity: str
    actor: str | None
    ip: str | None
    target: str | None
    success: bool
    details: dict[str, Any]


def build(cls: type[Any], row: dict[str, Any], **extra: Any) -> Any:
    """Build a record from a row, taking only the record's fields."""
    names = {a.name for a in attrs.fields(cls)}
    values = {k: v for k, v in row.items() if k in names}
    for key in ("keywords", "permissions"):
        if key in values and values[key] is not None:
            values[key] = tuple(values[key])
    values.update(extra)
    return cls(**values)
