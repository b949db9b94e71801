"""Message listings for the HTTP API: one statement per page, and header blocks.

:meth:`MessageSummaries.page` returns a mailbox and a page of its messages in one round
trip (the admin API's hottest query).  PostgreSQL builds the page's JSON array itself, with
the addresses taken from the cached parse: no row of the page becomes a Python object, and
the API writes the text into its response as it is.
"""

from __future__ import annotations

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.mailboxes import get_mailbox
from a3mail.store.names import normalize_mailbox
from a3mail.store.records import Flag, Mailbox, MessageInfo, NotFound, build, flag_names

MAX_HEADER_BYTES = 256 * 1024

#: The fields of each listed message, in the order they are written.
SUMMARY_FIELDS = (
    "uid",
    "from",
    "to",
    "subject",
    "date",
    "received_at",
    "size",
    "flags",
    "has_attachments",
)

_ISO = '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''  # ISO 8601 in UTC, formatted by PostgreSQL
# System flags by bit, in the order IMAP lists them (constants: safe to inline).
_FLAG_TABLE = ", ".join(
    f"({int(flag)}, {n}, '{flag_names(flag)[0]}')" for n, flag in enumerate(Flag)
)
_SUMMARY = (
    "json_build_object('uid', x.uid,"
    " 'from', coalesce(x.parsed -> 'from' -> 0 ->> 'address', ''),"
    " 'to', coalesce((SELECT json_agg(t) FROM jsonb_path_query(x.parsed, '$.to[*].address') t"
    "  WHERE jsonb_typeof(t) = 'string'), '[]'),"
    " 'subject', x.subject,"
    f" 'date', to_char(coalesce(x.sent_date, x.internal_date) AT TIME ZONE 'UTC', {_ISO}),"
    f" 'received_at', to_char(x.internal_date AT TIME ZONE 'UTC', {_ISO}),"
    " 'size', x.size,"
    " 'flags', array_to_json(ARRAY(SELECT f.name FROM (VALUES "
    + _FLAG_TABLE
    + ") f(bit, ord, name) WHERE x.flags & f.bit <> 0 ORDER BY f.ord) || x.keywords),"
    " 'has_attachments', x.has_attachments)"
)
# The page's ids first (index order, LIMIT/OFFSET), then only those rows' JSON: nothing is
# computed for skipped rows.
_PAGE = (
    "SELECT b.id, b.account_id, b.name, b.special_use, b.uidvalidity, b.uidnext,"
    " b.highestmodseq, b.subscribed, b.message_count, b.unseen_count, b.total_bytes,"
    f" (SELECT coalesce(json_agg({_SUMMARY} ORDER BY x.uid {{order}}), '[]')::text"
    " FROM (SELECT id FROM messages WHERE mailbox_id = b.id ORDER BY uid {order}"
    " LIMIT %(limit)s OFFSET %(offset)s) p JOIN messages x ON x.id = p.id) AS page_json"
    " FROM mailboxes b WHERE b.account_id = %(account)s AND b.name = %(mailbox)s"
)


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
    ) -> tuple[Mailbox, str]:
        """The mailbox (with its counters) and a page of its messages by UID, as JSON text.

        The text is an array of objects with :data:`SUMMARY_FIELDS`: ``from`` the first
        From address (``""`` if none), ``to`` the To addresses, ``date`` the Date header
        (else the arrival time) and ``received_at`` the arrival time in ISO 8601 UTC,
        ``flags`` the system flags then the keywords.
        :class:`NotFound` if the account has no such mailbox (or does not exist).
        """
        name = normalize_mailbox(mailbox)
        order = "DESC" if newest_first else "ASC"
        row = await self.ctx.db.fetchone(
            _PAGE.format(order=order),
            {"limit": limit, "offset": offset, "account": account_id, "mailbox": name},
        )
        if row is None:
            raise NotFound(f"no such mailbox: {name}")
        return build(Mailbox, row), str(row["page_json"])

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
