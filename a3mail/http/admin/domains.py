"""Domains: list (with users_count), add, delete (409 while it has users unless forced)."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.http.admin.context import MAX_ID, AdminContext
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import Conflict, InvalidRequest, NotFound, field_error
from a3mail.http.pagination import envelope, page_params
from a3mail.http.responses import JsonResponse
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field, query_bool, query_str
from a3mail.store.names import normalize_domain
from a3mail.store.records import Conflict as StoreConflict
from a3mail.store.records import Domain, InvalidName

MAX_INT32 = 2**31 - 1

CREATE_DOMAIN = Body(
    {
        "name": Field("string", "The domain name (SirrChat spelling).", minimum=1, maximum=253),
        "domain": Field(
            "string",
            "The domain name (A3Mailer spelling); give name or domain.",
            minimum=1,
            maximum=253,
        ),
        "enabled": Field("boolean", "False: mail for the domain is refused."),
        "max_users": Field(
            "integer",
            "The most users the domain may have; null = no limit.",
            nullable=True,
            minimum=0,
            maximum=MAX_INT32,
        ),
        "max_quota": Field(
            "integer",
            "The largest quota (bytes) a user of the domain may have; null = no limit.",
            nullable=True,
            minimum=0,
        ),
        "tempmail": Field("boolean", "True: the temp-mail API offers addresses in it."),
    },
    "Give the domain as name or as domain.",
)


def domain_json(domain: Domain) -> dict[str, Any]:
    """A domain as the API shows it."""
    return {
        "id": str(domain.id),
        "name": domain.name,
        "domain": domain.name,
        "enabled": domain.enabled,
        "max_users": domain.max_users,
        "max_quota": domain.max_quota,
        "users_count": domain.users_count,
        "tempmail": domain.tempmail,
        "created_at": domain.created_at,
    }


class DomainsApi:
    """The mail domains."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "GET", "/api/v1/domains", READ)
    async def list_domains(self, request: Any) -> dict[str, Any]:
        """A page of domains by name (filter: ``search``)."""
        page = page_params(request)
        search = query_str(request, "search")
        domains = await self.ctx.store.domains.list(search=search or None)
        chosen = domains[page.offset : page.offset + page.limit]
        return envelope(request, [domain_json(d) for d in chosen], len(domains), page)

    @endpoint(app, "POST", "/api/v1/domains", WRITE)
    async def create_domain(self, request: Any) -> JsonResponse:
        """Add a domain (409 if it exists)."""
        body = self.ctx.body(request, CREATE_DOMAIN)
        names = {body[k] for k in ("name", "domain") if k in body}
        if not names:
            raise InvalidRequest("name (or domain) is required", {"field": "name"})
        if len(names) > 1:
            raise InvalidRequest("name and domain differ; give one", {"field": "domain"})
        given = names.pop()
        try:
            name = normalize_domain(given)
        except InvalidName:
            field = "name" if "name" in body else "domain"
            raise field_error(field, "Invalid domain name", given) from None
        domain = await self.ctx.store.domains.add(
            name,
            enabled=body.get("enabled", True),
            max_users=body.get("max_users"),
            max_quota=body.get("max_quota"),
        )
        if body.get("tempmail"):
            await self.ctx.store.tempmail.set_domain(domain.id, True)
            domain = await self.ctx.store.domains.get(domain.id)
        await self.ctx.audit(request, "domain.create", domain.name, {"id": domain.id})
        return JsonResponse(domain_json(domain), 201)

    @endpoint(app, "DELETE", "/api/v1/domains/<domain_id>", WRITE)
    async def delete_domain(self, request: Any, domain_id: str) -> dict[str, Any]:
        """Remove a domain; with users, 409 unless ``?force=true`` (then they go too)."""
        force = query_bool(request, "force")
        try:
            domain = await self.ctx.store.domains.delete(_domain_key(domain_id), force=force)
        except StoreConflict as e:
            raise Conflict(
                f"{e}; add ?force=true to delete them with their mail",
                {"reason": "domain_has_users"},
            ) from e
        await self.ctx.audit(
            request,
            "domain.delete",
            domain.name,
            {"id": domain.id, "force": force, "users_deleted": domain.users_count if force else 0},
            severity="warning",
        )
        return {"deleted": True, "id": str(domain.id), "name": domain.name}


def _domain_key(domain_id: str) -> int | str:
    """A path's domain id: its number or its name."""
    if domain_id.isascii() and domain_id.isdigit():
        number = int(domain_id)
        if 0 < number <= MAX_ID:
            return number
        raise NotFound(f"no such domain: {domain_id[:100]}")
    try:
        return normalize_domain(domain_id)
    except InvalidName:
        raise NotFound(f"no such domain: {domain_id[:100]}") from None
