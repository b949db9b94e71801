"""The freemail API's users and mailboxes.

A freemail mailbox is an ordinary account (``created_by_key = 'freemail'``, so the temp-mail
reaper removes it once its ``expires_at`` passes) plus a ``freemail_mailboxes`` row: its
own login password, whether it may log in, favourite, forward target.  Users
(``freemail_users``) own mailboxes through ``freemail_user_mailboxes``; a user's
``mailbox_limit`` is checked in the same transaction that creates the mailbox.  A forward is
also an alias row (address -> target), so SMTP delivery forwards it through the outbound
queue (see ``accounts.resolve_address``); a trigger drops that alias with the mailbox.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import psycopg

from a3mail.store.accounts import DEFAULT_MAILBOXES
from a3mail.store.context import StoreContext, fetchall, fetchone
from a3mail.store.db import deferred
from a3mail.store.names import normalize_address
from a3mail.store.records import AlreadyExists, LimitExceeded, NotFound, build

#: ``accounts.created_by_key`` of freemail mailboxes (API key ids never look like this).
FREEMAIL_OWNER = "freemail"
USER_ROLES = ("user", "admin")


@attrs.frozen
class FreemailUser:
    """One user of the freemail API."""

    id: int
    username: str
    role: str
    mailbox_limit: int
    can_send: bool
    created_at: datetime
    password_hash: str = attrs.field(repr=False)


@attrs.frozen
class FreemailMailbox:
    """One freemail mailbox; ``is_pinned`` is as seen by whoever listed it."""

    account_id: int
    address: str
    can_login: bool
    is_favorite: bool
    is_pinned: bool
    forward_to: str | None
    created_at: datetime
    expires_at: datetime | None
    password_hash: str | None = attrs.field(default=None, repr=False)


def _user(row: dict[str, Any]) -> FreemailUser:
    user: FreemailUser = build(FreemailUser, row)
    return user


def _mailbox(row: dict[str, Any]) -> FreemailMailbox:
    mailbox: FreemailMailbox = build(FreemailMailbox, row)
    return mailbox


_BOX = (
    "f.account_id, f.address, f.can_login, f.is_favorite, f.forward_to, f.created_at,"
    " f.password_hash, a.expires_at"
)


class Freemail:
    """Users, their mailboxes and the mailboxes' settings."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # -- users ------------------------------------------------------------------------------

    @deferred
    async def add_user(
        self,
        username: str,
        password_hash: str,
        *,
        role: str = "user",
        mailbox_limit: int = 10,
        can_send: bool = False,
    ) -> FreemailUser:
        """A new user; :class:`AlreadyExists` if the name is taken."""
        if role not in USER_ROLES:
            raise ValueError(f"unknown role {role!r}")
        try:
            row = await self.ctx.db.fetchone(
                "INSERT INTO freemail_users (username, password_hash, role, mailbox_limit,"
                " can_send) VALUES (%s, %s, %s, %s, %s) RETURNING *",
                (username, password_hash, role, mailbox_limit, can_send),
            )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"user {username} exists") from e
        assert row is not None
        return _user(row)

    @deferred
    async def user(self, user_id: int) -> FreemailUser | None:
        """The user *user_id*, or None."""
        row = await self.ctx.db.fetchone("SELECT * FROM freemail_users WHERE id = %s", (user_id,))
        return None if row is None else _user(row)

    @deferred
    async def user_by_name(self, username: str) -> FreemailUser | None:
        """The user called *username*, or None."""
        row = await self.ctx.db.fetchone(
            "SELECT * FROM freemail_users WHERE username = %s", (username,)
        )
        return None if row is None else _user(row)

    @deferred
    async def users(
        self, *, limit: int, offset: int, newest_first: bool = True
    ) -> builtins.list[tuple[FreemailUser, int]]:
        """A page of users, each with how many mailboxes it owns."""
        order = "DESC" if newest_first else "ASC"
        rows = await self.ctx.db.fetchall(
            "SELECT u.*, (SELECT count(*) FROM freemail_user_mailboxes m WHERE m.user_id = u.id)"
            f" AS mailbox_count FROM freemail_users u ORDER BY u.id {order} LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return [(_user(r), int(r["mailbox_count"])) for r in rows]

    @deferred
    async def update_user(self, user_id: int, **changes: Any) -> FreemailUser:
        """Change username, password_hash, role, mailbox_limit or can_send."""
        allowed = {"username", "password_hash", "role", "mailbox_limit", "can_send"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        if "role" in changes and changes["role"] not in USER_ROLES:
            raise ValueError(f"unknown role {changes['role']!r}")
        if not changes:
            found = await self.user(user_id)
            if found is None:
                raise NotFound(f"no such user: {user_id}")
            return found
        names = sorted(changes)
        sets = ", ".join(f"{name} = %s" for name in names)
        try:
            row = await self.ctx.db.fetchone(
                f"UPDATE freemail_users SET {sets} WHERE id = %s RETURNING *",
                (*(changes[n] for n in names), user_id),
            )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists("that username is taken") from e
        if row is None:
            raise NotFound(f"no such user: {user_id}")
        return _user(row)

    @deferred
    async def delete_user(self, user_id: int) -> bool:
        """Remove a user (its mailboxes stay, unassigned); False if there was none."""
        count = await self.ctx.db.execute("DELETE FROM freemail_users WHERE id = %s", (user_id,))
        return count > 0

    # -- mailboxes --------------------------------------------------------------------------

    @deferred
    async def create_mailbox(
        self,
        address: str,
        *,
        owner: int | None,
        limit: int | None,
        expires_at: datetime | None,
    ) -> FreemailMailbox:
        """Create a mailbox (an account with its default folders) owned by user *owner*.

        :class:`LimitExceeded` if *owner* already has *limit* mailboxes; :class:`NotFound`
        if the domain is not an enabled local domain; :class:`AlreadyExists` if the address
        is taken (by an account or an alias).
        """
        address = normalize_address(address)
        domain_name = address.rpartition("@")[2]
        try:
            async with self.ctx.db.transaction() as conn:
                if owner is not None:
                    await conn.execute(
                        "SELECT 1 FROM freemail_users WHERE id = %s FOR UPDATE", (owner,)
                    )
                    used = await fetchone(
                        conn,
                        "SELECT count(*) AS n FROM freemail_user_mailboxes WHERE user_id = %s",
                        (owner,),
                    )
                    if limit is not None and used["n"] >= limit:
                        raise LimitExceeded(f"the mailbox limit ({limit}) is reached")
                domain = await fetchone(
                    conn,
                    "SELECT id FROM domains WHERE name = %s AND enabled FOR SHARE",
                    (domain_name,),
                )
                if domain is None:
                    raise NotFound(f"{domain_name} is not an enabled domain")
                taken = await fetchone(conn, "SELECT 1 FROM aliases WHERE address = %s", (address,))
                if taken is not None:
                    raise AlreadyExists(f"{address} is taken")
                account = await fetchone(
                    conn,
                    "INSERT INTO accounts (domain_id, address, created_by_key, expires_at)"
                    " VALUES (%s, %s, %s, %s) RETURNING id, expires_at",
                    (domain["id"], address, FREEMAIL_OWNER, expires_at),
                )
                for name, special in DEFAULT_MAILBOXES:
                    await conn.execute(
                        "INSERT INTO mailboxes (account_id, name, special_use) VALUES (%s, %s, %s)",
                        (account["id"], name, special),
                    )
                row = await fetchone(
                    conn,
                    "INSERT INTO freemail_mailboxes (account_id, address) VALUES (%s, %s)"
                    " RETURNING *",
                    (account["id"], address),
                )
                if owner is not None:
                    await conn.execute(
                        "INSERT INTO freemail_user_mailboxes (user_id, account_id) VALUES (%s, %s)",
                        (owner, account["id"]),
                    )
        except psycopg.errors.UniqueViolation as e:
            raise AlreadyExists(f"{address} is taken") from e
        return _mailbox({**row, "expires_at": account["expires_at"], "is_pinned": False})

    @deferred
    async def mailboxes(
        self,
        viewer: int | None,
        *,
        limit: int,
        offset: int = 0,
        domain: str | None = None,
        favorite: bool | None = None,
        forward: bool | None = None,
    ) -> builtins.list[FreemailMailbox]:
        """The mailboxes user *viewer* owns (None: every freemail mailbox, with the admin's
        pins), pinned first, then newest first."""
        clauses, params = _filters(domain, favorite, forward)
        if viewer is None:
            query = (
                f"SELECT {_BOX}, f.is_pinned FROM freemail_mailboxes f"
                " JOIN accounts a ON a.id = f.account_id"
            )
        else:
            query = (
                f"SELECT {_BOX}, u.is_pinned FROM freemail_user_mailboxes u"
                " JOIN freemail_mailboxes f ON f.account_id = u.account_id"
                " JOIN accounts a ON a.id = f.account_id"
            )
            clauses.insert(0, "u.user_id = %s")
            params.insert(0, viewer)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = await self.ctx.db.fetchall(
            f"{query}{where} ORDER BY is_pinned DESC, f.account_id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [_mailbox(r) for r in rows]

    @deferred
    async def count(self, viewer: int | None) -> int:
        """How many mailboxes *viewer* owns (None: how many freemail mailboxes exist)."""
        if viewer is None:
            row = await self.ctx.db.fetchone("SELECT count(*) AS n FROM freemail_mailboxes")
        else:
            row = await self.ctx.db.fetchone(
                "SELECT count(*) AS n FROM freemail_user_mailboxes WHERE user_id = %s",
                (viewer,),
            )
        return int(row["n"]) if row else 0

    @deferred
    async def mailbox(
        self, *, address: str | None = None, account_id: int | None = None
    ) -> FreemailMailbox | None:
        """One freemail mailbox by address or account id (the admin's pin), or None."""
        value: str | int
        if address is not None:
            clause, value = "f.address = %s", address.strip().lower()
        elif account_id is not None:
            clause, value = "f.account_id = %s", account_id
        else:
            raise ValueError("give an address or an account id")
        row = await self.ctx.db.fetchone(
            f"SELECT {_BOX}, f.is_pinned FROM freemail_mailboxes f"
            f" JOIN accounts a ON a.id = f.account_id WHERE {clause}",
            (value,),
        )
        return None if row is None else _mailbox(row)

    @deferred
    async def owned(self, user_id: int, account_ids: Sequence[int]) -> builtins.set[int]:
        """Which of *account_ids* user *user_id* owns."""
        rows = await self.ctx.db.fetchall(
            "SELECT account_id FROM freemail_user_mailboxes"
            " WHERE user_id = %s AND account_id = ANY(%s)",
            (user_id, list(account_ids)),
        )
        return {int(r["account_id"]) for r in rows}

    @deferred
    async def assign(self, user_id: int, account_id: int) -> bool:
        """Give user *user_id* the mailbox; False if it had it already."""
        count = await self.ctx.db.execute(
            "INSERT INTO freemail_user_mailboxes (user_id, account_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (user_id, account_id),
        )
        return count > 0

    @deferred
    async def unassign(self, user_id: int, account_id: int) -> tuple[bool, int]:
        """Take the mailbox from user *user_id*: (whether it had it, how many owners are
        left)."""
        async with self.ctx.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM freemail_user_mailboxes WHERE user_id = %s AND account_id = %s",
                (user_id, account_id),
            )
            left = await fetchone(
                conn,
                "SELECT count(*) AS n FROM freemail_user_mailboxes WHERE account_id = %s",
                (account_id,),
            )
        return cur.rowcount > 0, int(left["n"])

    @deferred
    async def toggle_pin(self, viewer: int | None, account_id: int) -> bool:
        """Flip the pin of a mailbox for *viewer* (None: the admin's pin); its new state."""
        if viewer is None:
            row = await self.ctx.db.fetchone(
                "UPDATE freemail_mailboxes SET is_pinned = NOT is_pinned WHERE account_id = %s"
                " RETURNING is_pinned",
                (account_id,),
            )
        else:
            row = await self.ctx.db.fetchone(
                "UPDATE freemail_user_mailboxes SET is_pinned = NOT is_pinned"
                " WHERE user_id = %s AND account_id = %s RETURNING is_pinned",
                (viewer, account_id),
            )
        if row is None:
            raise NotFound("no such mailbox")
        return bool(row["is_pinned"])

    @deferred
    async def set_flag(
        self, account_ids: Sequence[int], name: str, value: bool
    ) -> builtins.set[int]:
        """Set ``is_favorite`` or ``can_login`` of mailboxes; returns the ids changed."""
        if name not in ("is_favorite", "can_login"):
            raise ValueError(f"not a mailbox flag: {name}")
        rows = await self.ctx.db.fetchall(
            f"UPDATE freemail_mailboxes SET {name} = %s WHERE account_id = ANY(%s)"
            " RETURNING account_id",
            (value, list(account_ids)),
        )
        return {int(r["account_id"]) for r in rows}

    @deferred
    async def set_password(self, account_id: int, password_hash: str | None) -> bool:
        """Set a mailbox's login password (None: back to the default); False if none."""
        count = await self.ctx.db.execute(
            "UPDATE freemail_mailboxes SET password_hash = %s WHERE account_id = %s",
            (password_hash, account_id),
        )
        return count > 0

    @deferred
    async def set_forward(
        self, account_ids: Sequence[int], target: str | None
    ) -> builtins.set[int]:
        """Forward the mailboxes' incoming mail to *target* (None: stop); the alias rows
        change in the same transaction.  Returns the ids changed."""
        if target is not None:
            target = normalize_address(target)
        changed: set[int] = set()
        async with self.ctx.db.transaction() as conn:
            rows = await fetchall(
                conn,
                "SELECT f.account_id, f.address, f.forward_to, a.domain_id"
                " FROM freemail_mailboxes f JOIN accounts a ON a.id = f.account_id"
                " WHERE f.account_id = ANY(%s) ORDER BY f.account_id FOR UPDATE OF f",
                (list(account_ids),),
            )
            for row in rows:
                if row["forward_to"] is not None:
                    await conn.execute(
                        "DELETE FROM aliases WHERE address = %s AND target = %s",
                        (row["address"], row["forward_to"]),
                    )
                if target is not None and target != row["address"]:
                    await conn.execute(
                        "INSERT INTO aliases (domain_id, address, target) VALUES (%s, %s, %s)"
                        " ON CONFLICT DO NOTHING",
                        (row["domain_id"], row["address"], target),
                    )
                await conn.execute(
                    "UPDATE freemail_mailboxes SET forward_to = %s WHERE account_id = %s",
                    (target, row["account_id"]),
                )
                changed.add(int(row["account_id"]))
        return changed

    @deferred
    async def ids_by_address(self, addresses: Sequence[str]) -> dict[str, int]:
        """address -> account id of the freemail mailboxes among *addresses*."""
        rows = await self.ctx.db.fetchall(
            "SELECT address, account_id FROM freemail_mailboxes WHERE address = ANY(%s)",
            ([a.strip().lower() for a in addresses],),
        )
        return {r["address"]: int(r["account_id"]) for r in rows}


def _filters(
    domain: str | None, favorite: bool | None, forward: bool | None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if domain:
        clauses.append("f.address LIKE %s")
        params.append("%@" + domain.lower().replace("\\", "").replace("%", "").replace("_", "\\_"))
    if favorite is not None:
        clauses.append("f.is_favorite = %s")
        params.append(favorite)
    if forward is not None:
        clauses.append("f.forward_to IS NOT NULL" if forward else "f.forward_to IS NULL")
    return clauses, params
