"""Users: list, create (one or a batch), read, change, delete; quotas and statistics.

A user's ``id`` is its account number as a string (``"17"``); paths also accept the
address.  ``username``, ``groups`` and ``blockchain_address`` live in the account's
attributes.
"""

from __future__ import annotations

from typing import Any

import attrs
from klein import Klein

from a3mail.auth import passwords
from a3mail.http.admin.context import AdminContext, in_thread
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import Conflict, field_error
from a3mail.http.pagination import envelope, page_params
from a3mail.http.responses import JsonResponse
from a3mail.http.router import as_api_error
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field, query_str
from a3mail.store.names import normalize_address
from a3mail.store.records import Account, InvalidName, LimitExceeded, NotFound

MAX_BATCH = 100
_ATTRIBUTES = ("username", "groups", "blockchain_address")

_CHANGEABLE: dict[str, Field] = {
    "password": Field(
        "string",
        "The password (stored as an argon2id hash).",
        minimum=1,
        maximum=passwords.MAX_PASSWORD_LENGTH,
    ),
    "username": Field(
        "string", "A user name (stored; logins use the address).", nullable=True, maximum=64
    ),
    "display_name": Field("string", "The name shown with the address.", maximum=200),
    "quota": Field("integer", "Quota in bytes; 0 = unlimited.", minimum=0),
    "enabled": Field("boolean", "False: the user can neither log in nor receive mail."),
    "groups": Field(
        "array", "Group names (stored).", maximum=50, items=Field("string", minimum=1, maximum=64)
    ),
    "blockchain_address": Field("string", "A wallet address (stored).", nullable=True, maximum=128),
    "role": Field("string", "user or admin.", enum=("user", "admin")),
}
CREATE_USER = Body(
    {
        "email": Field(
            "string",
            "The address; its domain must exist.",
            required=True,
            minimum=3,
            maximum=254,
            fmt="email",
        ),
        **_CHANGEABLE,
        "password": attrs.evolve(_CHANGEABLE["password"], required=True),
    }
)
UPDATE_USER = Body(_CHANGEABLE, "Only the fields given change.")
BATCH = Body(
    {
        "users": Field(
            "array",
            f"Up to {MAX_BATCH} users, each as for POST /api/v1/users.",
            required=True,
            minimum=1,
            maximum=MAX_BATCH,
            items=Field("object", body=CREATE_USER),
        )
    }
)
SET_QUOTA = Body(
    {"quota": Field("integer", "Quota in bytes; 0 = unlimited.", required=True, minimum=0)}
)


def user_json(account: Account, last_login: Any = None) -> dict[str, Any]:
    """A user as the API shows it (both SirrChat's and A3Mailer's field names)."""
    extra = account.attributes or {}
    return {
        "id": str(account.id),
        "email": account.address,
        "username": extra.get("username"),
        "display_name": account.display_name,
        "domain": account.domain,
        "role": account.role,
        "enabled": account.enabled,
        "quota": account.quota_bytes,
        "used": account.used_bytes,
        "used_quota": account.used_bytes,
        "files_count": account.message_count,
        "groups": list(extra.get("groups") or []),
        "blockchain_address": extra.get("blockchain_address"),
        "created_at": account.created_at,
        "updated_at": account.updated_at,
        "last_login": last_login,
    }


def quota_json(account: Account) -> dict[str, Any]:
    """Quota, usage, percentage used (0 when unlimited) and message count."""
    quota, used = account.quota_bytes, account.used_bytes
    return {
        "quota": quota,
        "used": used,
        "percentage": round(used * 100 / quota, 2) if quota else 0.0,
        "files_count": account.message_count,
    }


class UsersApi:
    """The users of the mail server."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    # -- collection ------------------------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/users", READ)
    async def list_users(self, request: Any) -> dict[str, Any]:
        """A page of users by address (filters: ``domain``, ``search``)."""
        page = page_params(request)
        domain = query_str(request, "domain")
        search = query_str(request, "search")
        accounts, total = await self.ctx.store.accounts.list(
            domain=domain or None, search=search or None, limit=page.limit, offset=page.offset
        )
        logins = await self.ctx.store.stats.last_logins([a.address for a in accounts])
        data = [user_json(a, logins.get(a.address)) for a in accounts]
        result = envelope(request, data, total, page)
        # A3Mailer-style clients read these.
        result.update(users=data, total=total, page=page.page, limit=page.limit)
        return result

    @endpoint(app, "POST", "/api/v1/users", WRITE)
    async def create_user(self, request: Any) -> JsonResponse:
        """Create a user with the default mailboxes."""
        fields = self.ctx.body(request, CREATE_USER)
        account = await self._create(fields)
        await self.ctx.audit(request, "user.create", account.address, {"id": account.id})
        return JsonResponse(user_json(account), 201)

    @endpoint(app, "POST", "/api/v1/users/batch", WRITE)
    async def create_users(self, request: Any) -> dict[str, Any]:
        """Create several users; each succeeds or fails on its own."""
        batch = self.ctx.body(request, BATCH)["users"]
        results: list[dict[str, Any]] = []
        for index, fields in enumerate(batch):
            try:
                account = await self._create(fields, prefix=f"users[{index}].")
            except Exception as e:
                error = as_api_error(e)
                if error is None:
                    raise
                results.append(
                    {
                        "index": index,
                        "email": fields["email"],
                        "status": "failed",
                        "error": {
                            "code": error.code,
                            "message": error.message,
                            "details": error.details,
                        },
                    }
                )
                continue
            results.append(
                {
                    "index": index,
                    "email": account.address,
                    "status": "created",
                    "user": user_json(account),
                }
            )
        created = [r["email"] for r in results if r["status"] == "created"]
        await self.ctx.audit(request, "user.batch_create", None, {"created": created})
        return {"data": results, "created": len(created), "failed": len(results) - len(created)}

    async def _create(self, fields: dict[str, Any], prefix: str = "") -> Account:
        try:
            address = normalize_address(fields["email"])
        except InvalidName:
            raise field_error(prefix + "email", "Invalid email format", fields["email"]) from None
        password_hash = await in_thread(passwords.hash_password, fields["password"])
        quota = fields.get("quota", self.ctx.config.store.default_quota)
        try:
            return await self.ctx.store.accounts.add(
                address,
                password_hash=password_hash,
                quota_bytes=quota,
                role=fields.get("role", "user"),
                display_name=fields.get("display_name", ""),
                enabled=fields.get("enabled", True),
                attributes=_attributes({}, fields),
            )
        except NotFound:
            domain = address.rpartition("@")[2]
            raise field_error(
                prefix + "email",
                f"the domain {domain} is not served here; add it first",
                fields["email"],
            ) from None
        except LimitExceeded as e:
            raise Conflict(str(e), {"field": prefix + "quota", "reason": "domain_limit"}) from e

    # -- one user --------------------------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/users/<user_id>", READ)
    async def get_user(self, request: Any, user_id: str) -> dict[str, Any]:
        """One user."""
        account = await self.ctx.account(user_id)
        logins = await self.ctx.store.stats.last_logins([account.address])
        return user_json(account, logins.get(account.address))

    @endpoint(app, "PUT", "/api/v1/users/<user_id>", WRITE)
    async def update_user(self, request: Any, user_id: str) -> dict[str, Any]:
        """Change a user: only the fields given."""
        fields = self.ctx.body(request, UPDATE_USER)
        account = await self.ctx.account(user_id)
        if "quota" in fields:
            account = await self._set_quota(account, fields["quota"])
        changes: dict[str, Any] = {}
        if "password" in fields:
            changes["password_hash"] = await in_thread(passwords.hash_password, fields["password"])
        for name in ("display_name", "enabled", "role"):
            if name in fields:
                changes[name] = fields[name]
        if any(name in fields for name in _ATTRIBUTES):
            changes["attributes"] = _attributes(account.attributes or {}, fields)
        if changes:
            account = await self.ctx.store.accounts.update(account.id, **changes)
        changed = sorted(fields)
        await self.ctx.audit(request, "user.update", account.address, {"fields": changed})
        logins = await self.ctx.store.stats.last_logins([account.address])
        return user_json(account, logins.get(account.address))

    @endpoint(app, "DELETE", "/api/v1/users/<user_id>", WRITE)
    async def delete_user(self, request: Any, user_id: str) -> dict[str, Any]:
        """Delete a user with all their mail (and their API keys)."""
        account = await self.ctx.account(user_id)
        deleted = await self.ctx.store.accounts.delete(account.id)
        await self.ctx.audit(
            request, "user.delete", deleted.address, {"id": deleted.id}, severity="warning"
        )
        return {"deleted": True, "id": str(deleted.id), "email": deleted.address}

    # -- quota and statistics --------------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/users/<user_id>/quota", READ)
    async def get_quota(self, request: Any, user_id: str) -> dict[str, Any]:
        """Quota, usage, percentage and message count."""
        return quota_json(await self.ctx.account(user_id))

    @endpoint(app, "PUT", "/api/v1/users/<user_id>/quota", WRITE)
    async def set_quota(self, request: Any, user_id: str) -> dict[str, Any]:
        """Set the quota (bytes; 0 = unlimited), within the domain's max_quota."""
        quota = self.ctx.body(request, SET_QUOTA)["quota"]
        account = await self._set_quota(await self.ctx.account(user_id), quota)
        await self.ctx.audit(request, "user.quota", account.address, {"quota": quota})
        return quota_json(account)

    async def _set_quota(self, account: Account, quota: int) -> Account:
        try:
            return await self.ctx.store.accounts.set_quota(account.id, quota)
        except LimitExceeded as e:
            raise Conflict(str(e), {"field": "quota", "reason": "domain_limit"}) from e

    @endpoint(app, "GET", "/api/v1/users/<user_id>/stats", READ)
    async def user_stats(self, request: Any, user_id: str) -> dict[str, Any]:
        """Per-mailbox counts, storage, today's messages, the last message and login."""
        account = await self.ctx.account(user_id)
        boxes = await self.ctx.store.mailboxes.list(account.id)
        activity = await self.ctx.store.stats.user_activity(
            account.id, account.address, self.ctx.today()
        )
        return {
            "id": str(account.id),
            "email": account.address,
            **quota_json(account),
            "messages_total": account.message_count,
            "unseen_total": sum(b.unseen_count for b in boxes),
            "messages_today": activity.messages_today,
            "last_message_at": activity.last_message_at,
            "last_login": activity.last_login,
            "mailboxes": [
                {
                    "name": b.name,
                    "special_use": b.special_use,
                    "messages": b.message_count,
                    "unseen": b.unseen_count,
                    "size": b.total_bytes,
                }
                for b in boxes
            ],
        }


def _attributes(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The account attributes with the API's stored fields changed as given."""
    merged = dict(current)
    for name in _ATTRIBUTES:
        if name in fields:
            if fields[name] is None:
                merged.pop(name, None)
            else:
                merged[name] = fields[name]
    return merged
