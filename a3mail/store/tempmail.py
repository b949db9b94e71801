"""Temp-mail addresses: accounts created through the temp-mail API, owned by an API key.

A temp address is an ordinary account (no password: no IMAP/POP3 login) in a domain whose
``tempmail`` flag is on, with ``created_by_key`` set to the key_id of the API key that made
it, ``expires_at`` set, and ``tempmail_token`` holding the SHA-256 of its own token.  Every
lookup here takes the owner, so a key never reaches another key's addresses.
"""

from __future__ import annotations

import builtins
from datetime import datetime

import psycopg

from a3mail.store.accounts import DEFAULT_MAILBOXES
from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred
from a3mail.store.domains import get_domain
from a3mail.store.names import normalize_address
from a3mail.store.records import (
    Account,
    AlreadyExists,
    Flag,
    MessageInfo,
    NotFound,
    build,
)

_INFO = (
    "m.id, m.mailbox_id, m.account_id, m.uid, m.modseq, m.flags, m.keywords, m.internal_date,"
    " m.size, m.blob_path, m.header_size, m.sent_date, m.subject, m.from_addr, m.to_addr,"
    " m.message_id, m.has_attachments, m.verification_code, m.preview"
)


class TempMail:
    """Temp-mail domains and addresses, and the expired ones for the reaper."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # -- domains ----------------------------------------------------------------------------

    @deferred
    async def domains(self) -> builtins.list[str]:
        """Names of the enabled domains offering temp addresses, by name."""
        rows = await self.ctx.db.fetchall(
            "SELECT name FROM domains WHERE tempmail AND enabled ORDER BY name"
        )
        return [r["name"] for r in rows]

    @deferred
    async def set_domain(self, name_or_id: str | int, enabled: bool) -> None:
        """Turn temp mail on or off for a domain (:class:`NotFound` if it does not exist)."""
        async with self.ctx.db.transaction() as conn:
            domain = await get_domain(conn, name_or_id)
            await conn.execute(
                "UPDATE domains SET tempmail = %s WHERE id = %s", (enabled, domain.id)
            )

    @deferred
    async def is_domain(self, name: str) -> bool:
        """True if *name* is an enabled temp-mail domain."""
        row = await self.ctx.db.fetchone(
            "SELECT 1 FROM domains WHERE name = %s AND tempmail AND enabled",
            (name.lower().rstrip("."),),
        )
        return row is not None

    # -- addresses --------------------------------------------------------------------------

    @deferred
    async def create(
        self, address: str, *, key_id: str, token_hash: bytes, expires_at: datetime
    ) -> Account:
        """Create a temp address owned by *key_id* with its default mailboxes.

        :class:`NotFound` unless the domain is an enabled temp-mail domain;
        :class:`AlreadyExists` if the address (or an alias) is taken.
        """
        address = normalize_address(address)
        domain_name = address.rpartition("@")[2]
        try:
            async with self.ctx.db.transaction() as conn:
                domain = await fetchone(
                    conn,
                    "SELECT id FROM domains WHERE name = %s AND tempmail AND enabled FOR SHARE",
                    (domain_name,),
                )
                if domain is None:
                    raise NotFound(f"{domain_name} is not a temp-mail domain")
                alias = await fetchone(conn, "SELECT 1 FROM aliases WHERE address = %s", (address,))
                if alias is not None:
                    raise AlreadyExists(f"{address} is taken")
                row = await fetchone(
                    conn,
                    "INSERT INTO accounts (domain_id, address, created_by_key, tempmail_token,"
                    " expires_at) VALUES (%s, %s, %s, %s, %s) RETURNING *",
                    (domain["id"], address, key_id, token_hash, expires_at),
                )
                for name, special in DEFAULT_MAILBOXES:
                    await conn.execute(
                        "INSERT INTO mailboxes (account_id, name, special_use) VALUES (%s, %s, %s)",
                        (row["id"], name, special),
                    )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"{address} is taken") from e
        return build(Account, row)  # type: ignore[no-any-return]

    @deferred
    async def owned(self, key_id: str, account_id: int) -> Account:
        """The temp address *account_id* if *key_id* created it, else :class:`NotFound`."""
        row = await self.ctx.db.fetchone(
            "SELECT * FROM accounts WHERE id = %s AND created_by_key = %s",
            (account_id, key_id),
        )
        if row is None:
            raise NotFound("no such mailbox")
        return build(Account, row)  # type: ignore[no-any-return]

    @deferred
    async def by_token(self, token_hash: bytes) -> tuple[Account, str] | None:
        """The temp address whose own token hashes to *token_hash* and the key_id that owns
        it, or None."""
        row = await self.ctx.db.fetchone(
            "SELECT * FROM accounts WHERE tempmail_token = %s AND created_by_key IS NOT NULL",
            (token_hash,),
        )
        return None if row is None else (build(Account, row), row["created_by_key"])

    @deferred
    async def page(self, key_id: str, *, offset: int, limit: int) -> builtins.list[Account]:
        """Up to *limit* of *key_id*'s temp addresses after *offset*, newest first."""
        rows = await self.ctx.db.fetchall(
            "SELECT * FROM accounts WHERE created_by_key = %s ORDER BY id DESC LIMIT %s OFFSET %s",
            (key_id, limit, offset),
        )
        return [build(Account, r) for r in rows]

    # -- messages ---------------------------------------------------------------------------

    @deferred
    async def inbox_page(
        self, account_id: int, *, offset: int, limit: int
    ) -> builtins.list[tuple[MessageInfo, str]]:
        """Up to *limit* index entries of the account's INBOX after *offset*, newest first,
        each with the sender's bare address (from the cached parse; "" if none)."""
        rows = await self.ctx.db.fetchall(
            f"SELECT {_INFO}, coalesce(m.parsed -> 'from' -> 0 ->> 'address', '') AS sender"
            " FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " WHERE b.account_id = %s AND b.name = 'INBOX'"
            " ORDER BY m.uid DESC LIMIT %s OFFSET %s",
            (account_id, limit, offset),
        )
        return [(build(MessageInfo, r), r["sender"]) for r in rows]

    # -- expiry -----------------------------------------------------------------------------

    @deferred
    async def expired(self, now: datetime, limit: int = 100) -> builtins.list[Account]:
        """Temp addresses whose ``expires_at`` is past *now* (oldest first, at most *limit*).

        Accounts not made through the temp-mail API (``created_by_key`` NULL) never appear.
        """
        rows = await self.ctx.db.fetchall(
            "SELECT * FROM accounts WHERE created_by_key IS NOT NULL AND expires_at <= %s"
            " ORDER BY expires_at LIMIT %s",
            (now, limit),
        )
        return [build(Account, r) for r in rows]


def is_seen(info: MessageInfo) -> bool:
    """True if the message has ``\\Seen``."""
    return bool(info.flags & Flag.SEEN)
