"""Mailboxes (IMAP folders): create, rename, delete, subscribe, list."""

from __future__ import annotations

from typing import Any

import psycopg

from a3mail.store import events
from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.names import INBOX, MAILBOX_SEPARATOR, normalize_mailbox, parents
from a3mail.store.records import AlreadyExists, Conflict, InvalidName, Mailbox, NotFound, build

SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")


class Mailboxes:
    """The mailboxes of accounts.  Every call names the account: no cross-account access."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def list(self, account_id: int) -> list[Mailbox]:
        """Every mailbox of the account, INBOX first, then by name."""
        rows = await self.ctx.db.fetchall(
            "SELECT * FROM mailboxes WHERE account_id = %s ORDER BY name <> 'INBOX', name",
            (account_id,),
        )
        return [build(Mailbox, r) for r in rows]

    @deferred
    async def get(self, account_id: int, name: str) -> Mailbox:
        """One mailbox by name; :class:`NotFound` otherwise."""
        async with self.ctx.db.transaction() as conn:
            return await get_mailbox(conn, account_id, name)

    @deferred
    async def get_by_special_use(self, account_id: int, special_use: str) -> Mailbox | None:
        """The account's mailbox with this special use (e.g. ``\\Sent``), if any."""
        row = await self.ctx.db.fetchone(
            "SELECT * FROM mailboxes WHERE account_id = %s AND special_use = %s"
            " ORDER BY id LIMIT 1",
            (account_id, special_use),
        )
        return None if row is None else build(Mailbox, row)

    @deferred
    async def create(self, account_id: int, name: str, special_use: str | None = None) -> Mailbox:
        """Create a mailbox (and any missing parents); :class:`AlreadyExists` if present."""
        name = normalize_mailbox(name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidName(f"unknown special use {special_use!r}")
        async with self.ctx.db.transaction() as conn:
            await _lock_account(conn, account_id)
            if await _find(conn, account_id, name) is not None:
                raise AlreadyExists(f"mailbox {name} exists already")
            for parent in parents(name):
                if await _find(conn, account_id, parent) is None:
                    await self._insert(conn, account_id, parent, None)
            return await self._insert(conn, account_id, name, special_use)

    async def _insert(
        self, conn: Any, account_id: int, name: str, special_use: str | None
    ) -> Mailbox:
        try:
            row = await fetchone(
                conn,
                "INSERT INTO mailboxes (account_id, name, special_use) VALUES (%s, %s, %s)"
                " RETURNING *",
                (account_id, name, special_use),
            )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"mailbox {name} exists already") from e
        await self.ctx.publish(
            conn, events.MAILBOX_CREATED, account_id=account_id, mailbox_id=row["id"], name=name
        )
        return build(Mailbox, row)  # type: ignore[no-any-return]

    @deferred
    async def rename(self, account_id: int, old: str, new: str) -> Mailbox:
        """Rename a mailbox and its children (new UIDVALIDITY for each).

        Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty (RFC 3501).
        """
        old, new = normalize_mailbox(old), normalize_mailbox(new)
        async with self.ctx.db.transaction() as conn:
            await _lock_account(conn, account_id)
            source = await get_mailbox(conn, account_id, old)
            if await _find(conn, account_id, new) is not None:
                raise AlreadyExists(f"mailbox {new} exists already")
            if new == old or new.startswith(old + MAILBOX_SEPARATOR):
                raise InvalidName("cannot rename a mailbox into itself")
            for parent in parents(new):
                if await _find(conn, account_id, parent) is None:
                    await self._insert(conn, account_id, parent, None)
            if old == INBOX:
                return await self._rename_inbox(conn, account_id, source, new)
            children = await fetchall(
                conn,
                "SELECT id, name FROM mailboxes WHERE account_id = %s AND name LIKE %s",
                (account_id, _like_prefix(old + MAILBOX_SEPARATOR)),
            )
            renames = [(source.id, new)] + [
                (c["id"], new + c["name"][len(old) :]) for c in children
            ]
            for mailbox_id, new_name in renames:
                await conn.execute(
                    "UPDATE mailboxes SET name = %s, uidvalidity = nextval('uidvalidity_seq')"
                    " WHERE id = %s",
                    (new_name, mailbox_id),
                )
                await self.ctx.publish(
                    conn,
                    events.MAILBOX_RENAMED,
                    account_id=account_id,
                    mailbox_id=mailbox_id,
                    name=new_name,
                )
            return await get_mailbox(conn, account_id, new)

    async def _rename_inbox(self, conn: Any, account_id: int, inbox: Mailbox, new: str) -> Mailbox:
        """Give the inbox's row (and messages) the new name; create a fresh, empty INBOX."""
        await conn.execute(
            "UPDATE mailboxes SET name = %s, uidvalidity = nextval('uidvalidity_seq')"
            " WHERE id = %s",
            (new, inbox.id),
        )
        await self.ctx.publish(
            conn, events.MAILBOX_RENAMED, account_id=account_id, mailbox_id=inbox.id, name=new
        )
        await self._insert(conn, account_id, INBOX, None)
        return await get_mailbox(conn, account_id, new)

    @deferred
    async def delete(self, account_id: int, name: str) -> Mailbox:
        """Delete a mailbox with its messages.  INBOX and mailboxes with children refuse."""
        name = normalize_mailbox(name)
        if name == INBOX:
            raise Conflict("INBOX cannot be deleted")
        async with self.ctx.db.transaction() as conn:
            await _lock_account(conn, account_id)
            mailbox = await get_mailbox(conn, account_id, name)
            child = await fetchone(
                conn,
                "SELECT 1 FROM mailboxes WHERE account_id = %s AND name LIKE %s LIMIT 1",
                (account_id, _like_prefix(name + MAILBOX_SEPARATOR)),
            )
            if child is not None:
                raise Conflict(f"mailbox {name} has children; delete them first")
            paths = await fetchall(
                conn,
                "DELETE FROM messages WHERE mailbox_id = %s RETURNING blob_path",
                (mailbox.id,),
            )
            await conn.execute(
                "UPDATE accounts SET used_bytes = used_bytes - %s,"
                " message_count = message_count - %s WHERE id = %s",
                (mailbox.total_bytes, mailbox.message_count, account_id),
            )
            await conn.execute("DELETE FROM mailboxes WHERE id = %s", (mailbox.id,))
            await self.ctx.publish(
                conn,
                events.MAILBOX_DELETED,
                account_id=account_id,
                mailbox_id=mailbox.id,
                name=name,
            )
        await self.ctx.in_thread(self.ctx.blobs.remove, [p["blob_path"] for p in paths])
        return mailbox

    @deferred
    async def subscribe(self, account_id: int, name: str, subscribed: bool = True) -> None:
        """Set the subscription flag of an existing mailbox."""
        async with self.ctx.db.transaction() as conn:
            mailbox = await get_mailbox(conn, account_id, normalize_mailbox(name))
            await conn.execute(
                "UPDATE mailboxes SET subscribed = %s WHERE id = %s", (subscribed, mailbox.id)
            )


async def get_mailbox(conn: Any, account_id: int, name: str) -> Mailbox:
    """Fetch one mailbox of an account inside a transaction."""
    mailbox = await _find(conn, account_id, normalize_mailbox(name))
    if mailbox is None:
        raise NotFound(f"no such mailbox: {name}")
    return mailbox


async def get_mailbox_by_id(
    conn: Any, account_id: int, mailbox_id: int, lock: bool = False
) -> Mailbox:
    """Fetch a mailbox by id, only if it belongs to the account."""
    row = await fetchone(
        conn,
        "SELECT * FROM mailboxes WHERE id = %s AND account_id = %s"
        + (" FOR UPDATE" if lock else ""),
        (mailbox_id, account_id),
    )
    if row is None:
        raise NotFound("no such mailbox")
    return build(Mailbox, row)  # type: ignore[no-any-return]


async def _find(conn: Any, account_id: int, name: str) -> Mailbox | None:
    row = await fetchone(
        conn, "SELECT * FROM mailboxes WHERE account_id = %s AND name = %s", (account_id, name)
    )
    return None if row is None else build(Mailbox, row)


async def _lock_account(conn: Any, account_id: int) -> None:
    """Serialise mailbox-tree changes of one account."""
    row = await fetchone(conn, "SELECT id FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
    if row is None:
        raise NotFound("no such account")


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
