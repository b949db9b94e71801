"""The freemail API's request pipeline: route, authenticate, answer.

Errors are ``{"error": "message"}`` with freemail's statuses (400, 401, 403, 404, and 409,
413, 429, 500); exception text never reaches a client: unexpected errors are logged with the
request id and answered 500 ``internal server error``.  A guest gets the demo version of
the read endpoints (:mod:`a3mail.http.freemail.demo`) and 403 everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, MapAdapter, Rule

from a3mail.http.freemail.common import GUEST, BytesReply, FreemailError, Reply
from a3mail.http.freemail.demo import demo_handler
from a3mail.http.jsonsurface import (
    AsyncJsonResource,
    count_request,
    log_answered,
    log_unhandled,
    match_route,
    write_body,
)
from a3mail.http.ratelimit import RateLimiter
from a3mail.http.request import client_ip
from a3mail.http.responses import dumps
from a3mail.http.router import Limits
from a3mail.logs import get_logger
from a3mail.store.db import StoreUnavailable

log = get_logger(__name__)

PUBLIC, SESSION, AUTH = "public", "session", "auth"
#: paths whose body may be a whole message (the others are JSON under http.max_body)
LARGE_BODIES = ("/receive",)

#: (method, path, "group.handler", access)
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "/api/login", "sessions.login", PUBLIC),
    ("POST", "/api/logout", "sessions.logout", PUBLIC),
    ("GET", "/api/session", "sessions.session", SESSION),
    ("GET", "/api/domains", "mailboxes.domains", AUTH),
    ("GET", "/api/generate", "mailboxes.generate", AUTH),
    ("POST", "/api/create", "mailboxes.create", AUTH),
    ("GET", "/api/mailboxes", "mailboxes.list_mailboxes", AUTH),
    ("DELETE", "/api/mailboxes", "mailboxes.delete_mailbox", AUTH),
    ("GET", "/api/user/quota", "mailboxes.quota", AUTH),
    ("POST", "/api/mailboxes/pin", "mailboxes.pin", AUTH),
    ("POST", "/api/mailboxes/reset-password", "mailboxes.reset_password", AUTH),
    ("POST", "/api/mailboxes/toggle-login", "mailboxes.toggle_login", AUTH),
    ("POST", "/api/mailboxes/change-password", "mailboxes.change_password", AUTH),
    ("POST", "/api/mailboxes/batch-toggle-login", "mailboxes.batch_toggle_login", AUTH),
    ("POST", "/api/mailboxes/batch-favorite", "mailboxes.batch_favorite", AUTH),
    ("POST", "/api/mailboxes/batch-forward", "mailboxes.batch_forward", AUTH),
    (
        "POST",
        "/api/mailboxes/batch-favorite-by-address",
        "mailboxes.batch_favorite_by_address",
        AUTH,
    ),
    (
        "POST",
        "/api/mailboxes/batch-forward-by-address",
        "mailboxes.batch_forward_by_address",
        AUTH,
    ),
    ("POST", "/api/mailbox/forward", "mailboxes.forward", AUTH),
    ("POST", "/api/mailbox/favorite", "mailboxes.favorite", AUTH),
    ("PUT", "/api/mailbox/password", "mailboxes.own_password", AUTH),
    ("GET", "/api/emails", "mail.list_emails", AUTH),
    ("DELETE", "/api/emails", "mail.clear", AUTH),
    ("GET", "/api/emails/batch", "mail.batch", AUTH),
    ("GET", "/api/email/<message_id>", "mail.get_email", AUTH),
    ("DELETE", "/api/email/<message_id>", "mail.delete_email", AUTH),
    ("GET", "/api/email/<message_id>/download", "mail.download", AUTH),
    ("POST", "/api/send", "sending.send", AUTH),
    ("POST", "/api/send/batch", "sending.send_batch", AUTH),
    ("GET", "/api/send/<sent_id>", "sending.status", AUTH),
    ("PATCH", "/api/send/<sent_id>", "sending.update", AUTH),
    ("POST", "/api/send/<sent_id>/cancel", "sending.cancel", AUTH),
    ("GET", "/api/sent", "sending.list_sent", AUTH),
    ("GET", "/api/sent/<sent_id>", "sending.get_sent", AUTH),
    ("DELETE", "/api/sent/<sent_id>", "sending.delete_sent", AUTH),
    ("GET", "/api/users", "users.list_users", AUTH),
    ("POST", "/api/users", "users.create_user", AUTH),
    ("POST", "/api/users/assign", "users.assign", AUTH),
    ("POST", "/api/users/unassign", "users.unassign", AUTH),
    ("PATCH", "/api/users/<user_id>", "users.update_user", AUTH),
    ("DELETE", "/api/users/<user_id>", "users.delete_user", AUTH),
    ("GET", "/api/users/<user_id>/mailboxes", "users.user_mailboxes", AUTH),
    ("POST", "/receive", "receive.receive", AUTH),
)


class FreemailResource(AsyncJsonResource):
    """The twisted.web resource of the freemail API; *groups* name the handler objects
    (``sessions``, ``mailboxes``, ``mail``, ``sending``, ``users``, ``receive``)."""

    log = log

    def __init__(
        self,
        groups: dict[str, Any],
        demo: Any,
        max_json: Callable[[], int],
        *,
        limiter: RateLimiter | None = None,
        limits: Callable[[], Limits] = Limits,
    ) -> None:
        super().__init__()
        self.groups = groups
        self.demo = demo
        self.max_json = max_json
        self.limiter = limiter
        self.limits = limits
        rules = [
            Rule(path, methods=[method], endpoint=(target, access))
            for method, path, target, access in ROUTES
        ]
        self.adapter: MapAdapter = Map(rules, strict_slashes=False).bind("localhost")

    async def _respond(self, request: Any, request_id: str, gone: list[bool]) -> None:
        try:
            result = await self._dispatch(request)
        except FreemailError as e:
            result = Reply({"error": e.message}, status=e.status)
        except StoreUnavailable:
            result = Reply({"error": "the database is unavailable"}, status=500)
        except Exception:
            log_unhandled(log, request_id, request)
            result = Reply({"error": "internal server error"}, status=500)
        if gone:
            return
        if not isinstance(result, Reply | BytesReply):
            result = Reply(result)
        status = result.status if isinstance(result, Reply) else 200
        log_answered(log, request_id, request, status)
        if isinstance(result, BytesReply):
            safe = "".join(c for c in result.filename if c.isalnum() or c in "._-") or "message"
            request.setHeader(b"content-disposition", f'attachment; filename="{safe}"'.encode())
            write_body(request, 200, result.content_type, result.body)
            return
        for cookie in result.cookies:
            request.responseHeaders.addRawHeader(b"set-cookie", cookie.encode("latin-1"))
        write_body(request, result.status, "application/json", dumps(result.body))

    async def _dispatch(self, request: Any) -> Any:
        path, rule, arguments = match_route(self.adapter, request, FreemailError, 405)
        target, access = rule.endpoint
        if path not in LARGE_BODIES and _body_size(request) > self.max_json():
            raise FreemailError(413, "the request body is too large")
        group_name, _, name = target.partition(".")
        handler = getattr(self.groups[group_name], name)
        limits = self.limits()
        ip = client_ip(request, limits.trusted_proxies)
        if access == PUBLIC:
            if name == "login":  # every attempt counts: no guessing past the limit
                await self._count(request, f"freemail-ip:{ip}", limits.per_ip)
            return await handler(request)
        caller = await self.groups["sessions"].principal(request)
        if caller is None:
            await self._count(request, f"freemail-ip:{ip}", limits.per_ip)
        elif caller.role == GUEST:
            await self._count(request, f"freemail-guest:{ip}", limits.per_key)
        else:
            await self._count(
                request, f"freemail-user:{caller.role}:{caller.username}", limits.per_key
            )
        if access == SESSION:
            return await handler(request, caller)
        if caller is None:
            raise FreemailError(401, "not logged in")
        if caller.role == GUEST:
            handler = demo_handler(self.demo, name)
            if handler is None:
                raise FreemailError(403, "guests (demo mode) cannot do this")
        return await handler(request, caller, **arguments)

    async def _count(self, request: Any, bucket: str, limit: int) -> None:
        """Count the request against *bucket*; 429 past the limit (``[http]`` rate limits,
        the same counters as the admin API's)."""
        await count_request(self.limiter, request, bucket, limit, FreemailError)


def _body_size(request: Any) -> int:
    content = request.content
    if content is None:
        return 0
    position = content.tell()
    content.seek(0, 2)
    size = int(content.tell())
    content.seek(position)
    return size
