"""Messages: delivery, append, copy, move, flags, expunge, and reading them back.

Every change allocates UIDs and MODSEQs from the mailbox row (locked for the transaction),
keeps the mailbox and account counters, and publishes an event, all in ONE transaction.
Files are linked into place before the commit and removed only after it, so a crash at
any moment leaves either an orphan file (swept at start-up) or a committed message whose
file exists: nothing acknowledged is ever lost.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO

import attrs

from a3mail.store import events
from a3mail.store.blobs import IncomingBlob
from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.delivery_targets import delivery_result, now_local, resolve_targets
from a3mail.store.flag_update import change_flags
from a3mail.store.index import INDEX_COLUMNS, index_values
from a3mail.store.mailboxes import get_mailbox, get_mailbox_by_id
from a3mail.store.names import INBOX, normalize_mailbox
from a3mail.store.records import (
    CopyResult,
    DeliveryResult,
    DeliveryStatus,
    Flag,
    FlagChange,
    Mailbox,
    MailboxRef,
    MessageContent,
    MessageInfo,
    NotFound,
    OverQuota,
    build,
    split_flags,
)

# Turns the bytes of a message into the JSON form of its MIME parse.
Parser = Callable[[Any], Mapping[str, Any]]

_INFO_COLUMNS = (
    "id, mailbox_id, account_id, uid, modseq, flags, keywords, internal_date, size, blob_path,"
    " header_size, sent_date, subject, from_addr, to_addr, message_id, has_attachments,"
    " verification_code, preview"
)
_INSERT = (
    "INSERT INTO messages (mailbox_id, account_id, uid, modseq, flags, keywords, internal_date,"
    f" size, blob_path, {', '.join(INDEX_COLUMNS)}) VALUES ("
    + ", ".join(["%s"] * (9 + len(INDEX_COLUMNS)))
    + ")"
)


class Messages:
    """Message operations.  Every call names the account: no cross-account access."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # -- delivery and append -----------------------------------------------------------------

    @deferred
    async def deliver(
        self,
        blob: IncomingBlob,
        recipients: Sequence[str],
        *,
        parsed: Mapping[str, Any] | None = None,
        mailbox: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        keep_source: bool = False,
        parse: Parser | None = None,
    ) -> list[DeliveryResult]:
        """Deliver one fsynced message file to local recipients (addresses or aliases).

        Each distinct account gets the message once, in *mailbox* if it has one, else its
        INBOX.  The result is per recipient; ``DELIVERED`` is reported only after commit.
        The source file under ``mail/tmp`` is removed afterwards unless *keep_source*.
        The index columns come from *parsed* (the JSON form of the MIME parse) or, given
        *parse* (e.g. ``lambda data: parse_message(data).to_json()``), from running it over
        the file once, in a worker thread, before the transaction.
        """
        bits, keywords = split_flags(flags)
        async with self.ctx.db.connection() as conn:
            targets = await resolve_targets(conn, recipients, self.ctx.recipient_delimiter)
        account_ids = sorted({a for ids in targets.values() for a in ids})
        values, linked = await self.ctx.in_thread(
            self._prepare, blob.path, parsed, parse, account_ids, "new"
        )
        new = _NewMessage(bits, keywords, internal_date or now_local(), blob.size, values)
        try:
            async with self.ctx.db.connection() as conn:
                added = await _add_messages(
                    self.ctx, conn, linked, mailbox, new, fallback_inbox=True
                )
        except BaseException:
            await self.ctx.in_thread(self.ctx.blobs.remove, linked.values())
            raise
        refused = [path for a, path in linked.items() if added[a]["status"] != "delivered"]
        await self.ctx.in_thread(self._cleanup, refused, None if keep_source else blob.path)
        return [delivery_result(r, targets[r], added) for r in recipients]

    def _prepare(
        self,
        source: Any,
        parsed: Mapping[str, Any] | None,
        parse: Parser | None,
        account_ids: Sequence[int],
        sub: str,
        consume: bool = False,
    ) -> tuple[dict[str, Any], dict[int, str]]:
        """In a worker thread: parse the file if asked, then link it into each account's
        directory and fsync those directories; with *consume*, then unlink the incoming
        file (its content now lives in the links; the start-up sweep removes a link whose
        transaction never committed).  Returns the index values and the paths."""
        if parsed is None and parse is not None:
            parsed = self.ctx.blobs.parse_file(source, parse)
        linked = self._link_all(source, account_ids, sub)
        if consume:
            self.ctx.blobs.remove_incoming(source)
        return index_values(parsed), linked

    def _prepare_bytes(
        self,
        data: bytes,
        parsed: Mapping[str, Any] | None,
        parse: Parser | None,
        account_id: int,
    ) -> tuple[dict[str, Any], dict[int, str]]:
        """In a worker thread: write *data* as an incoming file (fsynced), parse it from
        memory if asked (not from the file again), then :meth:`_prepare` it into the
        account's ``cur`` directory, consuming the incoming file."""
        blob = self.ctx.blobs.write_bytes(data)
        try:
            if parsed is None and parse is not None:
                parsed = parse(data)
            return self._prepare(blob.path, parsed, None, [account_id], "cur", True)
        except BaseException:
            self.ctx.blobs.remove_incoming(blob.path)
            raise

    def _cleanup(self, refused: Sequence[str], incoming: Any) -> None:
        """In a worker thread: unlink files nobody took, and the incoming file."""
        self.ctx.blobs.remove(refused)
        if incoming is not None:
            self.ctx.blobs.remove_incoming(incoming)

    def _link_all(self, source: Any, account_ids: Sequence[int], sub: str) -> dict[int, str]:
        """Link *source* into each account's directory and fsync them (blocking)."""
        paths: dict[int, str] = {}
        try:
            for account_id in account_ids:
                paths[account_id] = self.ctx.blobs.link(source, account_id, sub)
            self.ctx.blobs.sync_dirs(paths.values())
        except BaseException:
            self.ctx.blobs.remove(paths.values())
            raise
        return paths

    @deferred
    async def append(
        self,
        account_id: int,
        mailbox: str,
        blob: IncomingBlob | bytes,
        *,
        parsed: Mapping[str, Any] | None = None,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        parse: Parser | None = None,
    ) -> tuple[MailboxRef, int]:
        """Append a message to an existing mailbox; returns the mailbox and the new UID.

        :class:`NotFound` if the mailbox does not exist, :class:`OverQuota` past the quota.
        *parsed* / *parse* as for :meth:`deliver`.  The incoming *blob* is consumed whatever
        the outcome (removing it again is harmless).  A message held in memory may be
        given as bytes: it is then written, fsynced, parsed and linked in one worker-thread
        call.
        """
        name = normalize_mailbox(mailbox)
        values, linked, size = await self.ctx.in_thread(
            self._prepare_one, blob, parsed, parse, account_id
        )
        new = _new_message(flags, internal_date, size, values)
        try:
            async with self.ctx.db.connection() as conn:
                added = await _append_row(self.ctx, conn, account_id, name, linked, new)
        except BaseException:
            await self.ctx.in_thread(self.ctx.blobs.remove, linked.values())
            raise
        return _mailbox_ref(added, name), int(added["uid"])

    @deferred
    async def append_many(
        self,
        account_id: int,
        mailbox: str,
        items: Sequence[AppendItem],
        *,
        parse: Parser | None = None,
    ) -> tuple[MailboxRef, builtins.list[tuple[int, int]]]:
        """MULTIAPPEND (RFC 3502): append every item, in order, or none of them.

        Returns the mailbox and each message's (UID, modseq).  The files are prepared in
        one worker-thread call, then every row is added in ONE transaction, so the quota
        counts them all and a failure (:class:`NotFound`, :class:`OverQuota`) leaves the
        mailbox, the counters and the event bus untouched; the links are then removed.
        Incoming blobs are consumed as by :meth:`append`.
        """
        name = normalize_mailbox(mailbox)
        prepared = await self.ctx.in_thread(self._prepare_items, items, parse, account_id)
        links = [path for _, linked, _ in prepared for path in linked.values()]
        try:
            async with self.ctx.db.transaction() as conn:
                rows = []
                for item, (values, linked, size) in zip(items, prepared, strict=True):
                    new = _new_message(item.flags, item.internal_date, size, values)
                    rows.append(await _append_row(self.ctx, conn, account_id, name, linked, new))
        except BaseException:
            await self.ctx.in_thread(self.ctx.blobs.remove, links)
            raise
        return _mailbox_ref(rows[-1], name), [(int(r["uid"]), int(r["modseq"])) for r in rows]

    def _prepare_one(
        self,
        blob: IncomingBlob | bytes,
        parsed: Mapping[str, Any] | None,
        parse: Parser | None,
        account_id: int,
    ) -> tuple[dict[str, Any], dict[int, str], int]:
        """In a worker thread: an appended message (an incoming file, or bytes then written
        first) parsed if asked and linked into the account's ``cur``, consumed; its index
        values, its link and its size."""
        if isinstance(blob, bytes):
            values, linked = self._prepare_bytes(blob, parsed, parse, account_id)
            return values, linked, len(blob)
        values, linked = self._prepare(blob.path, parsed, parse, [account_id], "cur", True)
        return values, linked, blob.size

    def _prepare_items(
        self, items: Sequence[AppendItem], parse: Parser | None, account_id: int
    ) -> builtins.list[tuple[dict[str, Any], dict[int, str], int]]:
        """In a worker thread: each item written (if in memory), parsed and linked into the
        account's ``cur``; on a failure, the links made so far are removed."""
        out: builtins.list[tuple[dict[str, Any], dict[int, str], int]] = []
        try:
            for item in items:
                out.append(self._prepare_one(item.blob, None, parse, account_id))
        except BaseException:
            self.ctx.blobs.remove(path for _, linked, _ in out for path in linked.values())
            raise
        return out

    # -- copy and move -----------------------------------------------------------------------

    @deferred
    async def copy(
        self,
        account_id: int,
        source_mailbox_id: int,
        uids: Sequence[int],
        dest: str,
        *,
        move: bool = False,
    ) -> CopyResult:
        """Copy (or move) messages to another mailbox of the same account, in UID order.

        Flags and internal dates are kept; new UIDs are allocated in the destination.
        """
        linked: list[str] = []
        removed: list[str] = []
        try:
            async with self.ctx.db.transaction() as conn:
                await _lock_account_row(conn, account_id)
                source = await get_mailbox_by_id(conn, account_id, source_mailbox_id, lock=True)
                target = await get_mailbox(conn, account_id, dest)
                rows = await fetchall(
                    conn,
                    "SELECT * FROM messages WHERE mailbox_id = %s AND uid = ANY(%s)"
                    " ORDER BY uid FOR UPDATE",
                    (source.id, list(uids)),
                )
                if not rows:
                    return CopyResult(target.uidvalidity, (), ())
                size = sum(r["size"] for r in rows)
                if not move:
                    outcome = await _check_accounts(conn, [account_id], size)
                    if outcome[account_id] is DeliveryStatus.OVER_QUOTA:
                        raise OverQuota("mailbox quota exceeded")
                unseen = sum(1 for r in rows if not r["flags"] & Flag.SEEN)
                box = await _allocate_in(conn, target.id, len(rows), size, unseen=unseen)
                linked = await self.ctx.in_thread(self._link_copies, account_id, rows)
                new_uids = []
                for i, (row, path) in enumerate(zip(rows, linked)):
                    new_uid = box["first_uid"] + i
                    new_uids.append(new_uid)
                    copied = {k: row[k] for k in INDEX_COLUMNS}
                    copied["parsed"] = _json_text(row["parsed"])
                    await conn.execute(
                        _INSERT,
                        (
                            target.id,
                            account_id,
                            new_uid,
                            box["modseq"],
                            row["flags"],
                            row["keywords"],
                            row["internal_date"],
                            row["size"],
                            path,
                            *copied.values(),
                        ),
                    )
                    await self.ctx.publish(
                        conn,
                        events.MESSAGE_ADDED,
                        account_id=account_id,
                        mailbox_id=target.id,
                        uid=new_uid,
                        modseq=box["modseq"],
                        flags=row["flags"],
                        keywords=list(row["keywords"]),
                    )
                await _add_usage(conn, account_id, size, len(rows))
                if move:
                    removed = await _remove_rows(self.ctx, conn, account_id, source, rows)
        except BaseException:
            await self.ctx.in_thread(self.ctx.blobs.remove, linked)
            raise
        await self.ctx.in_thread(self.ctx.blobs.remove, removed)
        return CopyResult(target.uidvalidity, tuple(r["uid"] for r in rows), tuple(new_uids))

    def _link_copies(self, account_id: int, rows: list[Any]) -> list[str]:
        paths: list[str] = []
        try:
            for row in rows:
                source = self.ctx.blobs.path(row["blob_path"])
                paths.append(self.ctx.blobs.link(source, account_id, "cur"))
            self.ctx.blobs.sync_dirs(paths)
        except BaseException:
            self.ctx.blobs.remove(paths)
            raise
        return paths

    # -- flags -------------------------------------------------------------------------------

    @deferred
    async def store_flags(
        self,
        account_id: int,
        mailbox_id: int,
        uids: Sequence[int],
        mode: str,
        flags: Iterable[str],
        *,
        unchanged_since: int | None = None,
    ) -> tuple[list[FlagChange], list[int]]:
        """Add (``+``), remove (``-``) or replace (``=``) flags of messages.

        Returns the messages actually changed (new flags, new modseq) and, with
        *unchanged_since* (CONDSTORE), the UIDs refused because they changed since.
        """
        if mode not in ("+", "-", "="):
            raise ValueError(f"bad flag mode {mode!r}")
        bits, keywords = split_flags(flags)
        async with self.ctx.db.connection() as conn:
            return await change_flags(
                conn,
                self.ctx.channel,
                account_id,
                mailbox_id,
                list(uids),
                mode,
                bits,
                sorted(keywords),
                unchanged_since,
            )

    # -- expunge -------------------------------------------------------------------------

    @deferred
    async def expunge(
        self,
        account_id: int,
        mailbox_id: int,
        uids: Sequence[int] | None = None,
        *,
        only_deleted: bool = True,
    ) -> list[int]:
        """Remove messages: those flagged ``\\Deleted`` (limited to *uids* if given), or with
        ``only_deleted=False`` exactly *uids*.  Returns the removed UIDs in order."""
        async with self.ctx.db.transaction() as conn:
            mailbox = await get_mailbox_by_id(conn, account_id, mailbox_id, lock=True)
            query = "SELECT * FROM messages WHERE mailbox_id = %s"
            params: list[Any] = [mailbox.id]
            if only_deleted:
                query += " AND flags & %s <> 0"
                params.append(int(Flag.DELETED))
            if uids is not None:
                query += " AND uid = ANY(%s)"
                params.append(list(uids))
            rows = await fetchall(conn, query + " ORDER BY uid FOR UPDATE", params)
            removed = await _remove_rows(self.ctx, conn, account_id, mailbox, rows) if rows else []
        await self.ctx.in_thread(self.ctx.blobs.remove, removed)
        return [r["uid"] for r in rows]

    # -- reading -----------------------------------------------------------------------------

    @deferred
    async def list(
        self,
        account_id: int,
        mailbox_id: int,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        min_uid: int = 1,
    ) -> builtins.list[MessageInfo]:
        """Index entries of a mailbox in UID order (or newest first)."""
        order = "DESC" if newest_first else "ASC"
        rows = await self.ctx.db.fetchall(
            f"SELECT {_INFO_COLUMNS} FROM messages WHERE account_id = %s AND mailbox_id = %s"
            f" AND uid >= %s ORDER BY uid {order} LIMIT %s OFFSET %s",
            (account_id, mailbox_id, min_uid, limit, offset),
        )
        return [build(MessageInfo, r) for r in rows]

    @deferred
    async def get(self, account_id: int, mailbox_id: int, uid: int) -> MessageContent:
        """One message with its cached parse; :class:`NotFound` otherwise."""
        row = await self.ctx.db.fetchone(
            f"SELECT {_INFO_COLUMNS}, parsed, body_text, body_html FROM messages"
            " WHERE account_id = %s AND mailbox_id = %s AND uid = %s",
            (account_id, mailbox_id, uid),
        )
        if row is None:
            raise NotFound("no such message")
        return MessageContent(
            build(MessageInfo, row), row["parsed"], row["body_text"], row["body_html"]
        )

    @deferred
    async def expunged_since(
        self, account_id: int, mailbox_id: int, modseq: int
    ) -> builtins.list[int]:
        """UIDs expunged from a mailbox after *modseq* (for QRESYNC)."""
        rows = await self.ctx.db.fetchall(
            "SELECT e.uid FROM expunged e JOIN mailboxes b ON b.id = e.mailbox_id"
            " WHERE b.account_id = %s AND e.mailbox_id = %s AND e.modseq > %s ORDER BY e.uid",
            (account_id, mailbox_id, modseq),
        )
        return [r["uid"] for r in rows]

    def open(self, info: MessageInfo) -> BinaryIO:
        """Open the stored bytes of a message for reading (the caller closes it)."""
        return self.ctx.blobs.open(info.blob_path)

    @deferred
    async def read(self, info: MessageInfo) -> bytes:
        """The exact stored bytes of a message (read in a worker thread)."""
        return await self.ctx.in_thread(self.ctx.blobs.read, info.blob_path)

    @deferred
    async def read_many(
        self, infos: Sequence[Any], lengths: Sequence[int] | None = None
    ) -> builtins.list[bytes | None]:
        """The stored bytes of several messages (records with ``blob_path`` and ``size``),
        None for a file that cannot be read.  With *lengths*, only that many bytes from
        the start of each file.  What the page cache holds is read at once; the rest (from
        the first file that would wait for the disk) in one worker-thread call."""
        paths = [i.blob_path for i in infos]
        whole = lengths is None
        wanted = [i.size for i in infos] if lengths is None else list(lengths)
        blobs = self.ctx.blobs
        contents = blobs.read_cached(paths, wanted, whole=whole)
        if len(contents) < len(paths):
            done = len(contents)
            read_rest = functools.partial(blobs.read_many, whole=whole)
            contents += await self.ctx.in_thread(read_rest, paths[done:], wanted[done:])
        return contents


# -- helpers used inside transactions ---------------------------------------------------


@attrs.frozen
class AppendItem:
    """One message of a MULTIAPPEND: the incoming file or the bytes, flags, date."""

    blob: IncomingBlob | bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


def _new_message(
    flags: Iterable[str], internal_date: datetime | None, size: int, values: dict[str, Any]
) -> _NewMessage:
    bits, keywords = split_flags(flags)
    return _NewMessage(bits, keywords, internal_date or now_local(), size, values)


async def _append_row(
    ctx: StoreContext,
    conn: Any,
    account_id: int,
    name: str,
    linked: Mapping[int, str],
    new: _NewMessage,
) -> dict[str, Any]:
    """Add an appended message's row (file already linked); its ``a3mail_add_message``
    result, or OverQuota / NotFound for any status other than delivered."""
    row = (await _add_messages(ctx, conn, linked, name, new))[account_id]
    status = row["status"]
    if status == "over_quota":
        raise OverQuota("mailbox quota exceeded")
    if status != "delivered":
        raise NotFound("no such mailbox" if status == "no_mailbox" else "no account")
    return row


def _mailbox_ref(row: Mapping[str, Any], name: str) -> MailboxRef:
    """The mailbox an ``a3mail_add_message`` row went into, as APPENDUID names it."""
    return MailboxRef(int(row["mailbox_id"]), name, int(row["uidvalidity"]), int(row["modseq"]))


@attrs.frozen
class _NewMessage:
    """What a delivered or appended message's index row is made of (besides its place)."""

    bits: int
    keywords: tuple[str, ...]
    internal_date: datetime
    size: int
    values: dict[str, Any]


async def _add_messages(
    ctx: StoreContext,
    conn: Any,
    paths: Mapping[int, str],
    mailbox: str,
    new: _NewMessage,
    *,
    fallback_inbox: bool = False,
) -> dict[int, dict[str, Any]]:
    """Add one message to each account (file already linked at ``paths[account]``), in
    account id order, with one call of ``a3mail_add_message`` for all of them."""
    if not paths:
        return {}
    account_ids = sorted(paths)
    rows = await fetchall(
        conn,
        "SELECT t.account_id, r.* FROM unnest(%s::bigint[], %s::text[])"
        " WITH ORDINALITY AS t(account_id, path, n), LATERAL a3mail_add_message("
        "t.account_id, %s, %s, true, %s, %s, %s, %s, t.path, %s, "
        + ", ".join(["%s"] * len(INDEX_COLUMNS))
        + ") r ORDER BY t.n",
        (
            account_ids,
            [paths[a] for a in account_ids],
            mailbox,
            fallback_inbox,
            new.size,
            new.bits,
            list(new.keywords),
            new.internal_date,
            ctx.channel,
            *new.values.values(),
        ),
    )
    return {r["account_id"]: r for r in rows}


def _json_text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def _check_accounts(
    conn: Any, account_ids: Sequence[int], size: int
) -> dict[int, DeliveryStatus]:
    """Lock the accounts (in id order) and decide who can take *size* more bytes."""
    rows = await fetchall(
        conn,
        "SELECT id, enabled, quota_bytes, used_bytes FROM accounts WHERE id = ANY(%s)"
        " ORDER BY id FOR UPDATE",
        (list(account_ids),),
    )
    outcome = {}
    for r in rows:
        if not r["enabled"]:
            outcome[r["id"]] = DeliveryStatus.DISABLED
        elif r["quota_bytes"] and r["used_bytes"] + size > r["quota_bytes"]:
            outcome[r["id"]] = DeliveryStatus.OVER_QUOTA
        else:
            outcome[r["id"]] = DeliveryStatus.DELIVERED
    return outcome


async def _allocate_in(
    conn: Any, mailbox_id: int, count: int, size: int, bits: int = 0, *, unseen: int | None = None
) -> dict[str, Any]:
    """Reserve *count* UIDs and one new MODSEQ in a mailbox (locks its row)."""
    if unseen is None:
        unseen = 0 if bits & Flag.SEEN else count
    row = await fetchone(
        conn,
        "UPDATE mailboxes SET uidnext = uidnext + %(n)s, highestmodseq = highestmodseq + 1,"
        " message_count = message_count + %(n)s, unseen_count = unseen_count + %(unseen)s,"
        " total_bytes = total_bytes + %(size)s WHERE id = %(id)s"
        " RETURNING id, uidnext - %(n)s AS first_uid, highestmodseq AS modseq",
        {"n": count, "unseen": unseen, "size": size, "id": mailbox_id},
    )
    assert row is not None
    return dict(row)


async def _add_usage(conn: Any, account_id: int, size: int, count: int) -> None:
    await conn.execute(
        "UPDATE accounts SET used_bytes = used_bytes + %s, message_count = message_count + %s"
        " WHERE id = %s",
        (size, count, account_id),
    )


async def _lock_account_row(conn: Any, account_id: int) -> None:
    row = await fetchone(conn, "SELECT id FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
    if row is None:
        raise NotFound("no such account")


async def _remove_rows(
    ctx: StoreContext, conn: Any, account_id: int, mailbox: Mailbox, rows: list[Any]
) -> list[str]:
    """Delete message rows, record them as expunged, fix the counters; return file paths."""
    ids = [r["id"] for r in rows]
    uids = [r["uid"] for r in rows]
    size = sum(r["size"] for r in rows)
    unseen = sum(1 for r in rows if not r["flags"] & Flag.SEEN)
    bumped = await fetchone(
        conn,
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1,"
        " message_count = message_count - %s, unseen_count = unseen_count - %s,"
        " total_bytes = total_bytes - %s WHERE id = %s RETURNING highestmodseq",
        (len(rows), unseen, size, mailbox.id),
    )
    modseq = bumped["highestmodseq"]
    await conn.execute("DELETE FROM messages WHERE id = ANY(%s)", (ids,))
    await conn.execute(
        "INSERT INTO expunged (mailbox_id, uid, modseq)"
        " SELECT %s, u, %s FROM unnest(%s::bigint[]) u"
        " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
        (mailbox.id, modseq, uids),
    )
    await _add_usage(conn, account_id, -size, -len(rows))
    await ctx.publish(
        conn,
        events.EXPUNGED,
        account_id=account_id,
        mailbox_id=mailbox.id,
        modseq=modseq,
        uids=uids,
    )
    return [r["blob_path"] for r in rows]
