"""The temp-mail surface's request pipeline: route, authenticate ``X-API-Key``, answer.

Two flavours share every handler: ``/api/...`` answers the data itself and errors as
``{"error": "message"}``; ``/v1/...`` wraps both in ``{"code", "msg", "data"}`` (code 0 and
msg ``"success"`` on success, the HTTP status and the message on error).  Statuses are
the same in both.  Exception text never reaches a client: unexpected errors are logged
with the request id and answered 500 ``internal server error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import attrs
from werkzeug.routing import Map, MapAdapter, Rule

from a3mail.auth.apikeys import looks_like_token, token_digest
from a3mail.http.auth import grants
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

MAILBOX_TOKEN_PREFIX = "mt_"  # noqa: S105 - a token prefix, not a secret
FLAVOURS = {"/api": "api", "/v1": "v1"}

#: (method, path under the flavour prefix, handler name, permission needed)
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", "/config", "config", "read"),
    ("POST", "/emails/generate", "generate", "write"),
    ("GET", "/emails", "list_mailboxes", "read"),
    ("GET", "/emails/<email_id>", "list_messages", "read"),
    ("DELETE", "/emails/<email_id>", "delete_mailbox", "write"),
    ("GET", "/emails/<email_id>/<message_id>", "get_message", "read"),
    ("DELETE", "/emails/<email_id>/<message_id>", "delete_message", "write"),
    ("GET", "/emails/<email_id>/<message_id>/raw", "get_raw", "read"),
    (
        "GET",
        "/emails/<email_id>/<message_id>/attachments/<path:attachment_id>",
        "get_attachment",
        "read",
    ),
)


class TempmailError(Exception):
    """An error answered with *status* and *message* (our own words, safe to show)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class Caller:
    """Who is calling: an API key (its key_id), or one address's own token."""

    key_id: str
    permissions: tuple[str, ...]
    only_account: int | None = None  # set for a mailbox token: the one address it reaches


@attrs.frozen
class BytesResponse:
    """A non-JSON body (a raw message, an attachment)."""

    body: bytes
    content_type: str
    filename: str


def header_text(request: Any, name: bytes) -> str | None:
    """A request header as text, or None."""
    value = request.getHeader(name)
    if value is None:
        return None
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class TempmailResource(AsyncJsonResource):
    """The twisted.web resource of the temp-mail surface; *api* holds the handlers."""

    log = log

    def __init__(
        self,
        api: Any,
        store: Any,
        *,
        limiter: RateLimiter | None = None,
        limits: Callable[[], Limits] = Limits,
    ) -> None:
        super().__init__()
        self.api = api
        self.store = store
        self.limiter = limiter
        self.limits = limits
        rules = []
        for prefix, flavour in FLAVOURS.items():
            for method, path, name, permission in ROUTES:
                rules.append(
                    Rule(prefix + path, methods=[method], endpoint=(flavour, name, permission))
                )
        self.adapter: MapAdapter = Map(rules, strict_slashes=False).bind("localhost")

    def _flavour(self, request: Any) -> str:
        return "v1" if request.path.startswith(b"/v1") else "api"

    async def _respond(self, request: Any, request_id: str, gone: list[bool]) -> None:
        flavour = self._flavour(request)
        status = 200
        try:
            result = await self._dispatch(request)
        except TempmailError as e:
            status, result = e.status, e
        except StoreUnavailable:
            status, result = 500, TempmailError(500, "the database is unavailable")
        except Exception:
            log_unhandled(log, request_id, request)
            status, result = 500, TempmailError(500, "internal server error")
        if gone:
            return
        log_answered(log, request_id, request, status)
        if isinstance(result, BytesResponse):
            self._write(request, 200, result.content_type, result.body, result.filename)
            return
        if isinstance(result, TempmailError):
            body: Any = (
                {"error": result.message}
                if flavour == "api"
                else {"code": result.status, "msg": result.message, "data": None}
            )
        else:
            body = result if flavour == "api" else {"code": 0, "msg": "success", "data": result}
        self._write(request, status, "application/json", dumps(body))

    def _write(
        self, request: Any, status: int, content_type: str, body: bytes, filename: str = ""
    ) -> None:
        headers = []
        if filename:
            safe = "".join(
                c for c in filename if c.isascii() and c.isprintable() and c not in '"\\'
            )
            value = f'attachment; filename="{safe or "download"}"'
            if safe != filename:  # RFC 6266: the exact name for clients that read it
                value += f"; filename*=UTF-8''{quote(filename, safe='')}"
            headers.append((b"content-disposition", value.encode("ascii")))
        write_body(request, status, content_type, body, headers)

    async def _dispatch(self, request: Any) -> Any:
        _path, rule, arguments = match_route(self.adapter, request, TempmailError, 404)
        _flavour, name, permission = rule.endpoint
        limits = self.limits()
        try:
            caller = await self.authenticate(request)
        except TempmailError:
            await self._count(
                request,
                f"ip:{client_ip(request, limits.trusted_proxies)}",
                limits.per_ip,
                limits.per_ip_window,
            )
            raise
        await self._count(request, f"key:{caller.key_id}", limits.per_key, limits.per_key_window)
        if not grants(caller.permissions, permission):
            raise TempmailError(401, f"this API key lacks the {permission} permission")
        handler = getattr(self.api, name)
        return await handler(request, caller, **arguments)

    async def _count(self, request: Any, bucket: str, limit: int, window: float = 0) -> None:
        """Count the request against *bucket* (the admin API's buckets: one limit per key
        across both surfaces); 429 past the limit."""
        await count_request(self.limiter, request, bucket, limit, TempmailError, window or None)

    async def authenticate(self, request: Any) -> Caller:
        """The caller named by ``X-API-Key``: an a3mail API key (either of its tokens) or
        a temp address's own token; 401 otherwise."""
        token = (header_text(request, b"x-api-key") or "").strip()
        if not token:
            raise TempmailError(401, "the X-API-Key header is required")
        if len(token) > 200:
            raise TempmailError(401, "invalid API key")
        if token.startswith(MAILBOX_TOKEN_PREFIX):
            found = await self.store.tempmail.by_token(token_digest(token))
            if found is None:
                raise TempmailError(401, "invalid API key")
            account, owner = found
            return Caller(owner, ("read", "write"), account.id)
        if not looks_like_token(token):
            raise TempmailError(401, "invalid API key")
        key = await self.store.keys.authenticate(token_digest(token))
        if key is None:
            raise TempmailError(401, "invalid, expired or revoked API key")
        return Caller(key.key_id, tuple(key.permissions))
