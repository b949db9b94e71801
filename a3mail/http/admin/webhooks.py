"""Webhooks: register, list, delete, and inspect deliveries (the store and the dispatcher
are :mod:`a3mail.store.webhooks` and :mod:`a3mail.ops.webhooks`; signing is described in
docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.http.admin.context import MAX_ID, AdminContext
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import InvalidRequest, NotFound
from a3mail.http.pagination import envelope, page_params
from a3mail.http.responses import JsonResponse
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field
from a3mail.store.webhook_events import EVENTS
from a3mail.store.webhooks import MAX_DESCRIPTION, MAX_SECRET, MIN_SECRET, Webhook

WEBHOOK_ID = "<int:webhook_id>"

CREATE_WEBHOOK = Body(
    {
        "url": Field(
            "string",
            "The http(s) URL events are POSTed to.",
            required=True,
            minimum=1,
            maximum=2048,
            fmt="uri",
        ),
        "events": Field(
            "array",
            "The events to send.",
            required=True,
            minimum=1,
            maximum=len(EVENTS),
            items=Field("string", enum=EVENTS),
        ),
        "secret": Field(
            "string",
            "The HMAC-SHA256 signing secret (generated if absent).",
            minimum=MIN_SECRET,
            maximum=MAX_SECRET,
        ),
        "description": Field("string", "A note about the webhook.", maximum=MAX_DESCRIPTION),
        "user": Field(
            "string",
            "Only this user's events (id or address); default: all users.",
            minimum=1,
            maximum=320,
        ),
    }
)


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it (the secret only when just created)."""
    shown: dict[str, Any] = {
        "id": str(hook.id),
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "user_id": None if hook.account_id is None else str(hook.account_id),
        "enabled": hook.enabled,
        "created_at": hook.created_at,
        "last_success_at": hook.last_success_at,
        "last_failure_at": hook.last_failure_at,
        "failure_count": hook.failure_count,
    }
    if hook.secret is not None:
        shown["secret"] = hook.secret
    return shown


def delivery_json(delivery: Any) -> dict[str, Any]:
    """One delivery with its attempts."""
    return {
        "id": str(delivery.id),
        "event": delivery.event,
        "event_id": delivery.event_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_status": delivery.response_status,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "next_attempt_at": delivery.next_attempt_at,
        "delivered_at": delivery.delivered_at,
        "attempt_log": [
            {
                "attempt": a.attempt,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "response_status": a.response_status,
                "error": a.error,
            }
            for a in delivery.attempt_log
        ],
    }


class WebhooksApi:
    """Webhook registrations and their delivery log."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "POST", "/api/v1/webhooks", WRITE)
    async def create_webhook(self, request: Any) -> JsonResponse:
        """Register a webhook; the response is the only one showing its secret."""
        body = self.ctx.body(request, CREATE_WEBHOOK)
        account_id = None
        if "user" in body:
            account_id = (await self.ctx.account(body["user"])).id
        webhooks = self.ctx.store.webhooks
        settings = getattr(self.ctx.config, "webhooks", None)
        webhooks.allow_private_targets = bool(getattr(settings, "allow_private_targets", False))
        try:
            hook = await webhooks.create(
                url=body["url"],
                events=body["events"],
                secret=body.get("secret"),
                account_id=account_id,
                description=body.get("description", ""),
            )
        except ValueError as e:  # the store's own checks: URL target, events, secret
            raise InvalidRequest(str(e), {"field": _field_of(str(e))}) from None
        await self.ctx.audit(
            request, "webhook.create", hook.url, {"id": hook.id, "events": list(hook.events)}
        )
        return JsonResponse(webhook_json(hook), 201)

    @endpoint(app, "GET", "/api/v1/webhooks", READ)
    async def list_webhooks(self, request: Any) -> dict[str, Any]:
        """A page of webhooks, oldest first."""
        page = page_params(request)
        hooks = await self.ctx.store.webhooks.list()
        chosen = hooks[page.offset : page.offset + page.limit]
        return envelope(request, [webhook_json(h) for h in chosen], len(hooks), page)

    @endpoint(app, "DELETE", f"/api/v1/webhooks/{WEBHOOK_ID}", WRITE)
    async def delete_webhook(self, request: Any, webhook_id: int) -> dict[str, Any]:
        """Remove a webhook and its pending deliveries."""
        hook = await self.ctx.store.webhooks.delete(_checked(webhook_id))
        await self.ctx.audit(request, "webhook.delete", hook.url, {"id": hook.id})
        return {"deleted": True, "id": str(hook.id)}

    @endpoint(app, "GET", f"/api/v1/webhooks/{WEBHOOK_ID}/deliveries", READ)
    async def list_deliveries(self, request: Any, webhook_id: int) -> dict[str, Any]:
        """A page of the webhook's deliveries, newest first, each with every attempt."""
        page = page_params(request)
        deliveries, total = await self.ctx.store.webhooks.deliveries(
            _checked(webhook_id), limit=page.limit, offset=page.offset
        )
        return envelope(request, [delivery_json(d) for d in deliveries], total, page)


def _checked(webhook_id: int) -> int:
    """404 for an id that cannot exist."""
    if not 1 <= webhook_id <= MAX_ID:
        raise NotFound(f"no such webhook: {webhook_id}")
    return webhook_id


def _field_of(message: str) -> str:
    """The body field a store ValueError is about (its messages start by naming it)."""
    for name, word in (("events", "event"), ("secret", "secret"), ("description", "descr")):
        if word in message.split(":")[0]:
            return name
    return "url"
