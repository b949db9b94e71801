"""Mailbox endpoints: domains, generate/create, list/delete, quota, pin, favourite, forward,
passwords and logins (the batch ones for the strict admin only)."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta
from typing import Any

from a3mail.http.freemail.common import (
    MAILBOX,
    FreemailError,
    Principal,
    address,
    address_list,
    arg,
    bad_request,
    bool_arg,
    flag,
    forbidden,
    id_list,
    int_arg,
    json_object,
    mailbox_json,
    millis,
    number,
    text_field,
)
from a3mail.http.freemail.context import FreemailContext, require_manager, require_strict
from a3mail.store.records import AlreadyExists, InvalidName, LimitExceeded, NotFound

DEFAULT_LENGTH = 8
MIN_LENGTH, MAX_LENGTH = 4, 32
DEFAULT_LIST = 100
MAX_LIST = 500
MAX_PASSWORD = 1024
_ALPHABET = string.ascii_lowercase + string.digits


def random_local(length: int) -> str:
    """A random local part of *length* lowercase letters and digits, starting with a letter."""
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(_ALPHABET) for _ in range(length - 1)
    )


def valid_local(local: str) -> bool:
    """Letters, digits, ``.``, ``_``, ``-``; no leading, trailing or double dot."""
    allowed = set(_ALPHABET + "._-")
    return (
        0 < len(local) <= 64
        and set(local) <= allowed
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
    )


class MailboxHandlers:
    """The mailbox endpoints."""

    def __init__(self, ctx: FreemailContext) -> None:
        self.ctx = ctx

    async def domains(self, request: Any, caller: Principal) -> list[str]:
        """The domains offered."""
        return await self.ctx.domains()

    async def _domain(self, index: Any) -> str:
        domains = await self.ctx.domains()
        if not domains:
            raise bad_request("no domain is configured")
        if index is None or index == "":
            index = 0
        if isinstance(index, str) and index.isascii() and index.isdigit() and len(index) < 6:
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(domains):
            raise bad_request("invalid domainIndex")
        return domains[index]

    async def _create(self, caller: Principal, local: str, domain: str) -> dict[str, Any]:
        require_manager(caller)
        settings = self.ctx.settings
        lifetime = settings.mailbox_lifetime
        expires = self.ctx.now() + timedelta(seconds=lifetime) if lifetime > 0 else None
        try:
            box = await self.ctx.store.freemail.create_mailbox(
                f"{local}@{domain}",
                owner=caller.user_id,
                limit=None if caller.sees_all else caller.mailbox_limit,
                expires_at=expires,
            )
        except LimitExceeded:
            raise FreemailError(403, "the mailbox limit is reached") from None
        except AlreadyExists:
            raise FreemailError(409, "the address is already taken") from None
        except (NotFound, InvalidName):
            raise bad_request("invalid address or domain") from None
        return {"email": box.address, "expires": millis(box.expires_at), "id": box.account_id}

    async def generate(self, request: Any, caller: Principal) -> dict[str, Any]:
        """A new mailbox with a random name (``length``, ``domainIndex``)."""
        length = int_arg(request, "length", DEFAULT_LENGTH, maximum=MAX_LENGTH, minimum=MIN_LENGTH)
        domain = await self._domain(arg(request, "domainIndex"))
        return await self._create(caller, random_local(length), domain)

    async def create(self, request: Any, caller: Principal) -> dict[str, Any]:
        """A new mailbox with the given ``local`` part."""
        body = json_object(request)
        local = text_field(body, "local", maximum=64, required=True).strip().lower()
        if not valid_local(local):
            raise bad_request("invalid local part: use letters, digits, '.', '_' or '-'")
        domain = await self._domain(body.get("domainIndex"))
        return await self._create(caller, local, domain)

    async def list_mailboxes(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """The caller's mailboxes (an admin's: all), pinned first."""
        limit = int_arg(request, "limit", DEFAULT_LIST, maximum=MAX_LIST, minimum=1)
        offset = int_arg(request, "offset", 0, maximum=10_000_000)
        domain = arg(request, "domain") or None
        favorite, forward = bool_arg(request, "favorite"), bool_arg(request, "forward")
        if caller.role == MAILBOX:
            box = await self.ctx.mailbox(caller, account_id=caller.account_id)
            return [mailbox_json(box)] if offset == 0 else []
        if caller.user_id is None and not caller.sees_all:
            return []
        boxes = await self.ctx.store.freemail.mailboxes(
            caller.viewer,
            limit=limit,
            offset=offset,
            domain=domain,
            favorite=favorite,
            forward=forward,
        )
        return [mailbox_json(b) for b in boxes]

    async def delete_mailbox(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Delete a mailbox with its mail.  A user gives it up; it is deleted once no user
        owns it any more."""
        require_manager(caller)
        box = await self.ctx.mailbox(caller, address=address(arg(request, "address")))
        if not caller.sees_all and caller.user_id is not None:
            _had, left = await self.ctx.store.freemail.unassign(caller.user_id, box.account_id)
            if left:
                return {"success": True, "deleted": False}
        try:
            await self.ctx.store.accounts.delete(box.account_id)
        except NotFound:
            return {"success": True, "deleted": False}
        return {"success": True, "deleted": True}

    async def quota(self, request: Any, caller: Principal) -> dict[str, Any]:
        """How many mailboxes the caller has and may have."""
        if caller.sees_all:
            used = await self.ctx.store.freemail.count(None)
            return {"limit": -1, "used": used, "remaining": -1, "note": "admins have no limit"}
        if caller.user_id is None:
            raise forbidden("this login has no mailbox quota")
        used = await self.ctx.store.freemail.count(caller.user_id)
        limit = caller.mailbox_limit
        return {"limit": limit, "used": used, "remaining": max(0, limit - used)}

    async def pin(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Flip the caller's pin of a mailbox."""
        require_manager(caller)
        box = await self._box_from(request, caller)
        pinned = await self.ctx.store.freemail.toggle_pin(caller.viewer, box.account_id)
        return {"success": True, "pinned": pinned}

    async def _box_from(self, request: Any, caller: Principal) -> Any:
        """The mailbox named by ``?address=`` or the body's ``address``."""
        given = arg(request, "address")
        if not given:
            given = json_object(request).get("address")
        return await self.ctx.mailbox(caller, address=address(given))

    async def reset_password(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Back to the default password (the address)."""
        require_strict(caller)
        box = await self._box_from(request, caller)
        await self.ctx.store.freemail.set_password(box.account_id, None)
        return {"success": True}

    async def toggle_login(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Let a mailbox log in, or not."""
        require_strict(caller)
        body = json_object(request)
        box = await self.ctx.mailbox(caller, address=address(body.get("address")))
        value = flag(body.get("can_login"), "can_login")
        await self.ctx.store.freemail.set_flag([box.account_id], "can_login", value)
        return {"success": True, "can_login": value}

    async def change_password(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Set a mailbox's password."""
        require_strict(caller)
        body = json_object(request)
        box = await self.ctx.mailbox(caller, address=address(body.get("address")))
        password = text_field(body, "new_password", maximum=MAX_PASSWORD, required=True)
        await self.ctx.store.freemail.set_password(
            box.account_id, await self.ctx.hash_password(password)
        )
        return {"success": True}

    async def own_password(self, request: Any, caller: Principal) -> dict[str, Any]:
        """A mailbox login changes its own password."""
        if caller.role != MAILBOX or caller.account_id is None:
            raise forbidden("only a mailbox login can change its password here")
        body = json_object(request)
        current = text_field(body, "currentPassword", maximum=MAX_PASSWORD, required=True)
        new = text_field(body, "newPassword", maximum=MAX_PASSWORD, required=True)
        if len(new) < 6:
            raise bad_request("the new password must have at least 6 characters")
        box = await self.ctx.mailbox(caller, account_id=caller.account_id)
        if box.password_hash is None:
            ok = current == box.address
        else:
            ok = await self.ctx.verify_password(box.password_hash, current)
        if not ok:
            raise bad_request("the current password is wrong")
        await self.ctx.store.freemail.set_password(
            box.account_id, await self.ctx.hash_password(new)
        )
        return {"success": True, "message": "password changed"}

    async def favorite(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Mark a mailbox as favourite, or not."""
        require_manager(caller)
        body = json_object(request)
        box = await self.ctx.mailbox(
            caller, account_id=number(body.get("mailbox_id"), "mailbox_id")
        )
        value = flag(body.get("is_favorite"), "is_favorite")
        await self.ctx.store.freemail.set_flag([box.account_id], "is_favorite", value)
        return {"success": True}

    async def forward(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Forward a mailbox's incoming mail (``forward_to`` empty or null: stop)."""
        require_manager(caller)
        body = json_object(request)
        box = await self.ctx.mailbox(
            caller, account_id=number(body.get("mailbox_id"), "mailbox_id")
        )
        target = _forward_target(body.get("forward_to"))
        if target == box.address:
            raise bad_request("a mailbox cannot forward to itself")
        await self.ctx.store.freemail.set_forward([box.account_id], target)
        return {"success": True}

    # -- batches (strict admin) -------------------------------------------------------------

    async def batch_toggle_login(self, request: Any, caller: Principal) -> dict[str, Any]:
        """``can_login`` for many mailboxes by address."""
        return await self._batch_flag_by_address(request, caller, "can_login")

    async def batch_favorite(self, request: Any, caller: Principal) -> dict[str, Any]:
        """``is_favorite`` for many mailboxes by id."""
        require_strict(caller)
        body = json_object(request)
        ids = id_list(body.get("mailbox_ids"), "mailbox_ids")
        value = flag(body.get("is_favorite"), "is_favorite")
        changed = await self.ctx.store.freemail.set_flag(ids, "is_favorite", value)
        return _id_result(ids, changed)

    async def batch_forward(self, request: Any, caller: Principal) -> dict[str, Any]:
        """``forward_to`` for many mailboxes by id."""
        require_strict(caller)
        body = json_object(request)
        ids = id_list(body.get("mailbox_ids"), "mailbox_ids")
        changed = await self.ctx.store.freemail.set_forward(
            ids, _forward_target(body.get("forward_to"))
        )
        return _id_result(ids, changed)

    async def batch_favorite_by_address(self, request: Any, caller: Principal) -> dict[str, Any]:
        """``is_favorite`` for many mailboxes by address."""
        return await self._batch_flag_by_address(request, caller, "is_favorite")

    async def batch_forward_by_address(self, request: Any, caller: Principal) -> dict[str, Any]:
        """``forward_to`` for many mailboxes by address."""
        require_strict(caller)
        body = json_object(request)
        addresses = address_list(body.get("addresses"))
        target = _forward_target(body.get("forward_to"))
        found = await self.ctx.store.freemail.ids_by_address(addresses)
        changed = await self.ctx.store.freemail.set_forward(list(found.values()), target)
        return _batch_result(addresses, found, changed)

    async def _batch_flag_by_address(
        self, request: Any, caller: Principal, name: str
    ) -> dict[str, Any]:
        """Set the flag *name* (the body's field of that name) for many mailboxes by
        address (strict admins only)."""
        require_strict(caller)
        body = json_object(request)
        addresses = address_list(body.get("addresses"))
        value = flag(body.get(name), name)
        found = await self.ctx.store.freemail.ids_by_address(addresses)
        changed = await self.ctx.store.freemail.set_flag(list(found.values()), name, value)
        return _batch_result(addresses, found, changed)


def _forward_target(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return address(value, "forward_to")


def _batch_result(addresses: list[str], found: dict[str, int], changed: set[int]) -> dict[str, Any]:
    results = []
    for item in addresses:
        account_id = found.get(item)
        if account_id is None:
            results.append({"address": item, "success": False, "error": "mailbox not found"})
        else:
            results.append({"address": item, "success": True, "updated": account_id in changed})
    return _batch_envelope(results, sum(1 for r in results if r["success"]))


def _id_result(ids: list[int], changed: set[int]) -> dict[str, Any]:
    results = [
        {"mailbox_id": i, "success": i in changed}
        | ({} if i in changed else {"error": "mailbox not found"})
        for i in ids
    ]
    return _batch_envelope(results, len(changed))


def _batch_envelope(results: list[dict[str, Any]], ok: int) -> dict[str, Any]:
    """A batch's answer: its per-item *results*, *ok* of which succeeded."""
    return {
        "success": True,
        "success_count": ok,
        "fail_count": len(results) - ok,
        "total": len(results),
        "results": results,
    }
