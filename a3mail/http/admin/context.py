"""What every admin API resource group is given: the store, the clock, the runtime, and the
helpers they share (the caller, request bodies, audit records, looking up a user)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
from twisted.internet.defer import Deferred

from a3mail.http.auth import Principal
from a3mail.http.errors import NotFound, Unauthorized
from a3mail.http.request import context_of
from a3mail.http.validation import Body, parse_json
from a3mail.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")

MAX_ID = 2**63 - 1


@attrs.define
class AdminContext:
    """Shared by the admin API's resource groups.

    ``runtime`` is None in tests that need no server facts; ``config`` then comes from
    ``config_source`` (a callable returning the current config).
    """

    store: Any
    clock: Any
    runtime: Any = None
    config_source: Callable[[], Any] | None = None

    @property
    def config(self) -> Any:
        """The configuration in force (it changes on reload)."""
        if self.runtime is not None:
            return self.runtime.config
        assert self.config_source is not None
        return self.config_source()

    def now(self) -> datetime:
        """The current time (by the injected clock), UTC."""
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    def today(self) -> datetime:
        """Midnight UTC today."""
        return self.now().replace(hour=0, minute=0, second=0, microsecond=0)

    @staticmethod
    def principal(request: Any) -> Principal:
        """The authenticated caller (routes needing a permission always have one)."""
        principal = context_of(request).principal
        if principal is None:
            raise Unauthorized("an API key is required")
        return principal  # type: ignore[no-any-return]

    @staticmethod
    def body(request: Any, body: Body) -> dict[str, Any]:
        """The request's JSON body, validated against *body*."""
        return body.validate(parse_json(request.content.read()))

    async def audit(
        self,
        request: Any,
        event_type: str,
        target: str | None,
        details: dict[str, Any] | None = None,
        severity: str = "info",
    ) -> None:
        """Record an admin write in the audit log (a failure to record is only logged)."""
        context = context_of(request)
        context.audited = True
        principal = context.principal
        try:
            await self.store.audit.record(
                event_type,
                severity=severity,
                actor=principal.actor if principal is not None else None,
                ip=context.client_ip,
                target=target,
                details={**(details or {}), "request_id": context.request_id},
            )
        except Exception:
            log.failure(
                "{request_id}: recording {event} in the audit log",
                request_id=context.request_id,
                event=event_type,
            )

    async def audit_write(self, request: Any, route: str) -> None:
        """Record a successful admin write whose handler recorded nothing itself
        (``admin.write`` with the method and route; the router calls this)."""
        method = request.method.decode("latin-1")
        await self.audit(request, "admin.write", route, {"method": method})

    async def account(self, user_id: str) -> Any:
        """The account named by a user id: its number (``"17"``) or its address."""
        return await self.store.accounts.get(account_key(user_id))


def account_key(user_id: str) -> int | str:
    """A path's user id as the store looks it up (404 if it cannot be one)."""
    if user_id.isascii() and user_id.isdigit():
        number = int(user_id)
        if 0 < number <= MAX_ID:
            return number
    elif "@" in user_id and len(user_id) <= 320:
        return user_id
    raise NotFound(f"no such user: {user_id[:100]}", {"id": user_id[:100]})


def in_thread(fn: Callable[..., T], *args: Any) -> Deferred[T]:
    """Run CPU-heavy work (password hashing) in a worker thread."""
    return Deferred.fromFuture(asyncio.ensure_future(asyncio.to_thread(fn, *args)))
