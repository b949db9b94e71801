"""Message listings for the HTTP API: one statement per page, and header blocks.

:meth:`MessageSummaries.page` returns a mailbox and a page of its messages with the
addresses taken from the cached parse, in one round trip (the admin API's hottest query).
"""

from __future__ import annotations

from typing import Any

import attrs

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.mailboxes import get_mailbox
from a3mail.store.names import normalize_mailbox
from a3mail.store.records import Flag, Mailbox, MessageInfo, NotFound, build, flag_names

MAX_HEADER_BYTES = 256 * 1024
_FLAGS = tuple((int(flag), flag_names(flag)[0]) for flag in Flag)

_ISO = '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''  # ISO 8601 in UTC, formatted by PostgreSQL
# The page's ids first (index order, LIMIT/OFFSET), then only those rows' columns: the
# expressions over the cached parse are never computed for skipped rows.
_PAGE = (
    "SELECT b.id, b.account_id, b.name, b.special_use, b.uidvalidity, b.uidnext,"
    " b.highestmodseq, b.subscribed, b.message_count, b.unseen_count, b.total_bytes, m.*"
    " FROM mailboxes b LEFT JOIN LATERAL (SELECT x.uid AS m_uid,"
    " x.flags AS m_flags, x.keywords AS m_keywords,"
    f" to_char(coalesce(x.sent_date, x.internal_date) AT TIME ZONE 'UTC', {_ISO}) AS m_date,"
    f" to_char(x.internal_date AT TIME ZONE 'UTC', {_ISO}) AS m_received,"
    " x.size AS m_size, x.subject AS m_subject, x.has_attachments AS m_has_attachments,"
    " x.parsed -> 'from' -> 0 ->> 'address' AS m_from,"
    " ARRAY(SELECT jsonb_path_query(x.parsed, '$.to[*].address') #>> '{{}}') AS m_to"
    " FROM (SELECT id FROM messages WHERE mailbox_id = b.id ORDER BY uid {order}"
    " LIMIT %(limit)s OFFSET %(offset)s) p JOIN messages x ON x.id = p.id) m ON true"
    " WHERE b.account_id = %(account)s AND b.name = %(mailbox)s ORDER BY m.m_uid {order}"
)


@attrs.frozen
class MessageSummary:
    """What a message list shows of one message."""

    uid: int
    sender: str
    recipients: tuple[str, ...]
    subject: str
    date: str  # ISO 8601 UTC (the Date header, else the arrival time)
    received: str  # ISO 8601 UTC
    size: int
    flags: tuple[str, ...]
    has_attachments: bool


class MessageSummaries:
    """Pages of message summaries and raw header blocks."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def page(
        self,
        account_id: int,
        mailbox: str,
        *,
        limit: int,
        offset: int = 0,
        newest_first: bool = True,
    ) -> tuple[Mailbox, list[MessageSummary]]:
        """The mailbox (with its counters) and a page of its messages by UID.

        :class:`NotFound` if the account has no such mailbox (or does not exist).
        """
        name = normalize_mailbox(mailbox)
        order = "DESC" if newest_first else "ASC"
        rows = await self.ctx.db.fetchall(
            _PAGE.format(order=order),
            {"limit": limit, "offset": offset, "account": account_id, "mailbox": name},
        )
        if not rows:
            raise NotFound(f"no such mailbox: {name}")
        box = build(Mailbox, rows[0])
        return box, [_summary(r) for r in rows if r["m_uid"] is not None]

    @deferred
    async def mailbox(self, account_id: int, name: str) -> Mailbox:
        """One mailbox of an account (:class:`NotFound` otherwise)."""
        async with self.ctx.db.connection() as conn:
            return await get_mailbox(conn, account_id, normalize_mailbox(name))

    @deferred
    async def header(self, info: MessageInfo) -> bytes:
        """The stored header block of a message (at most 256 KiB of it)."""
        size = info.header_size or MAX_HEADER_BYTES
        return await self.ctx.in_thread(
            self._read_head, info.blob_path, min(size, MAX_HEADER_BYTES)
        )

    def _read_head(self, rel_path: str, size: int) -> bytes:
        with self.ctx.blobs.open(rel_path) as f:
            data = f.read(size)
        if size == MAX_HEADER_BYTES:  # no recorded header size: cut at the blank line
            end = data.find(b"\r\n\r\n")
            data = data if end < 0 else data[: end + 4]
        return data


def _flag_names(bits: int, keywords: list[str]) -> tuple[str, ...]:
    """``records.flag_names`` on plain ints (this runs for every listed message)."""
    if not bits:
        return tuple(keywords)
    return (*(name for bit, name in _FLAGS if bits & bit), *keywords)


def _summary(row: dict[str, Any]) -> MessageSummary:
    return MessageSummary(
        uid=int(row["m_uid"]),
        sender=row["m_from"] or "",
        recipients=tuple(a for a in (row["m_to"] or []) if isinstance(a, str)),
        subject=row["m_subject"],
        date=row["m_date"],
        received=row["m_received"],
        size=int(row["m_size"]),
        flags=_flag_names(row["m_flags"], row["m_keywords"]),
        has_attachments=bool(row["m_has_attachments"]),
    )
