"""API keys: ``POST/GET /api/v1/auth/keys``, ``DELETE /api/v1/auth/keys/{key_id}`` (admin)."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.auth import apikeys
from a3mail.http.admin.context import AdminContext
from a3mail.http.auth import ADMIN, PERMISSIONS
from a3mail.http.errors import Forbidden, field_error
from a3mail.http.pagination import envelope, page_params
from a3mail.http.responses import JsonResponse
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field, query_bool
from a3mail.store.records import ApiKey

CREATE_KEY = Body(
    {
        "name": Field("string", "A label for the key.", maximum=200),
        "permissions": Field(
            "array",
            'Permissions of the new key (default ["read"]); admin implies write implies read.'
            " A key cannot grant a permission it lacks.",
            minimum=1,
            maximum=3,
            items=Field("string", enum=PERMISSIONS),
        ),
        "expires_at": Field(
            "string",
            "When the key stops working (ISO 8601); null = never.",
            nullable=True,
            fmt="date-time",
        ),
    }
)


def key_json(key: ApiKey, now: Any) -> dict[str, Any]:
    """A key as listed (never its tokens)."""
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and key.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "key_id": key.key_id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "permissions": list(key.permissions),
        "user": key.account_address,
        "status": status,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


class KeysApi:
    """Create, list and revoke API keys."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "POST", "/api/v1/auth/keys", ADMIN)
    async def create_key(self, request: Any) -> JsonResponse:
        """Create a key; its tokens are in this response only."""
        caller = self.ctx.principal(request)
        body = self.ctx.body(request, CREATE_KEY)
        permissions = list(dict.fromkeys(body.get("permissions") or ["read"]))
        missing = [p for p in permissions if not caller.allows(p)]
        if missing:
            raise Forbidden(
                "a key cannot grant permissions it lacks",
                {"field": "permissions", "missing": missing},
            )
        expires_at = body.get("expires_at")
        if expires_at is not None and expires_at <= self.ctx.now():
            raise field_error("expires_at", "expires_at must be in the future", body["expires_at"])
        new, record = await apikeys.issue(
            self.ctx.store,
            account_id=caller.key.account_id,
            name=body.get("name", ""),
            permissions=permissions,
            expires_at=expires_at,
        )
        await self.ctx.audit(request, "api_key.create", record.key_id, {"permissions": permissions})
        return JsonResponse(
            {
                "key_id": record.key_id,
                "api_key": new.secret,
                "key": new.key,
                "name": record.name,
                "permissions": list(record.permissions),
                "created_at": record.created_at,
                "expires_at": record.expires_at,
            },
            201,
        )

    @endpoint(app, "GET", "/api/v1/auth/keys", ADMIN)
    async def list_keys(self, request: Any) -> dict[str, Any]:
        """Keys, newest first (``?include_revoked=true`` for revoked ones too)."""
        page = page_params(request)
        include_revoked = query_bool(request, "include_revoked")
        keys = await self.ctx.store.keys.list(include_revoked=include_revoked)
        now = self.ctx.now()
        chosen = keys[page.offset : page.offset + page.limit]
        return envelope(request, [key_json(k, now) for k in chosen], len(keys), page)

    @endpoint(app, "DELETE", "/api/v1/auth/keys/<key_id>", ADMIN)
    async def revoke_key(self, request: Any, key_id: str) -> dict[str, Any]:
        """Revoke a key: it stops authenticating at once."""
        record = await self.ctx.store.keys.revoke(key_id[:100])
        await self.ctx.audit(request, "api_key.revoke", record.key_id, severity="warning")
        return {"revoked": True, **key_json(record, self.ctx.now())}
