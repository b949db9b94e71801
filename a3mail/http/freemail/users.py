"""User administration (strict admin only): list, create, update, delete users, their
mailboxes, assigning and unassigning mailboxes."""

from __future__ import annotations

from typing import Any

from a3mail.http.freemail.common import (
    FreemailError,
    Principal,
    address,
    arg,
    bad_request,
    flag,
    int_arg,
    json_object,
    not_found,
    path_id,
    stamp,
    text_field,
)
from a3mail.http.freemail.context import FreemailContext, require_strict
from a3mail.store.freemail import USER_ROLES, FreemailUser
from a3mail.store.records import AlreadyExists, NotFound

DEFAULT_LIMIT, MAX_LIMIT = 50, 100
MAX_MAILBOX_LIMIT = 100_000
MAX_USERNAME = 64
MAX_PASSWORD = 1024
MAX_USER_MAILBOXES = 1000


def user_json(user: FreemailUser, mailbox_count: int | None = None) -> dict[str, Any]:
    """One user (``mailbox_count`` when listed)."""
    body: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "mailbox_limit": user.mailbox_limit,
        "can_send": int(user.can_send),
        "created_at": stamp(user.created_at),
    }
    if mailbox_count is not None:
        body["mailbox_count"] = mailbox_count
    return body


def _username(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("username is required")
    name = value.strip()
    if not name or len(name) > MAX_USERNAME or "@" in name or not name.isprintable():
        raise bad_request("invalid username (1-64 printable characters, no '@')")
    if name in ("guest", "__root__"):
        raise bad_request("that username is reserved")
    return name


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MAILBOX_LIMIT:
        raise bad_request("invalid mailboxLimit")
    return value


def _role(value: Any) -> str:
    if value not in USER_ROLES:
        raise bad_request('role must be "user" or "admin"')
    return str(value)


class UserHandlers:
    """The user endpoints."""

    def __init__(self, ctx: FreemailContext) -> None:
        self.ctx = ctx

    async def list_users(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """A page of users, newest first (``sort=asc``: oldest first)."""
        require_strict(caller)
        limit = int_arg(request, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT, minimum=1)
        offset = int_arg(request, "offset", 0, maximum=10_000_000)
        sort = (arg(request, "sort") or "desc").lower()
        if sort not in ("asc", "desc"):
            raise bad_request('sort must be "asc" or "desc"')
        found = await self.ctx.store.freemail.users(
            limit=limit, offset=offset, newest_first=sort == "desc"
        )
        return [user_json(user, count) for user, count in found]

    async def create_user(self, request: Any, caller: Principal) -> dict[str, Any]:
        """A new user."""
        require_strict(caller)
        body = json_object(request)
        username = _username(body.get("username"))
        if username == self.ctx.settings.admin_name:
            raise bad_request("that username is reserved")
        password = text_field(body, "password", maximum=MAX_PASSWORD, required=True)
        role = _role(body.get("role", "user"))
        limit = body.get("mailboxLimit", body.get("mailbox_limit"))
        mailbox_limit = self.ctx.settings.mailbox_limit if limit is None else _limit(limit)
        can_send = flag(body.get("can_send", False), "can_send")
        try:
            user = await self.ctx.store.freemail.add_user(
                username,
                await self.ctx.hash_password(password),
                role=role,
                mailbox_limit=mailbox_limit,
                can_send=can_send,
            )
        except AlreadyExists:
            raise FreemailError(409, "that username is taken") from None
        return user_json(user)

    async def update_user(self, request: Any, caller: Principal, user_id: str) -> dict[str, Any]:
        """Change a user's name, password, limit, sending right or role."""
        require_strict(caller)
        number = path_id(user_id)
        body = json_object(request)
        changes: dict[str, Any] = {}
        if body.get("username") is not None:
            changes["username"] = _username(body["username"])
            if changes["username"] == self.ctx.settings.admin_name:
                raise bad_request("that username is reserved")
        if body.get("password"):
            password = text_field(body, "password", maximum=MAX_PASSWORD)
            changes["password_hash"] = await self.ctx.hash_password(password)
        limit = body.get("mailboxLimit", body.get("mailbox_limit"))
        if limit is not None:
            changes["mailbox_limit"] = _limit(limit)
        if body.get("can_send") is not None:
            changes["can_send"] = flag(body["can_send"], "can_send")
        if body.get("role") is not None:
            changes["role"] = _role(body["role"])
        try:
            await self.ctx.store.freemail.update_user(number, **changes)
        except NotFound:
            raise not_found("user not found") from None
        except AlreadyExists:
            raise FreemailError(409, "that username is taken") from None
        return {"success": True}

    async def delete_user(self, request: Any, caller: Principal, user_id: str) -> dict[str, Any]:
        """Remove a user (its mailboxes stay)."""
        require_strict(caller)
        if not await self.ctx.store.freemail.delete_user(path_id(user_id)):
            raise not_found("user not found")
        return {"success": True}

    async def user_mailboxes(
        self, request: Any, caller: Principal, user_id: str
    ) -> list[dict[str, Any]]:
        """The mailboxes a user owns."""
        require_strict(caller)
        user = await self.ctx.store.freemail.user(path_id(user_id))
        if user is None:
            raise not_found("user not found")
        boxes = await self.ctx.store.freemail.mailboxes(user.id, limit=MAX_USER_MAILBOXES)
        return [
            {"address": b.address, "created_at": stamp(b.created_at), "is_pinned": int(b.is_pinned)}
            for b in boxes
        ]

    async def _pair(self, request: Any) -> tuple[FreemailUser, int]:
        body = json_object(request)
        name = body.get("username")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("username is required")
        user = await self.ctx.store.freemail.user_by_name(name.strip())
        if user is None:
            raise not_found("user not found")
        box = await self.ctx.store.freemail.mailbox(address=address(body.get("address")))
        if box is None:
            raise not_found("mailbox not found")
        return user, box.account_id

    async def assign(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Give a user a mailbox."""
        require_strict(caller)
        user, account_id = await self._pair(request)
        await self.ctx.store.freemail.assign(user.id, account_id)
        return {"success": True}

    async def unassign(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Take a mailbox from a user."""
        require_strict(caller)
        user, account_id = await self._pair(request)
        had, _left = await self.ctx.store.freemail.unassign(user.id, account_id)
        if not had:
            raise not_found("the user does not have that mailbox")
        return {"success": True}
