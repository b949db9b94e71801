"""The admin API surface: its resource groups behind one :class:`~a3mail.http.router.ApiRouter`.

Each group is a class with a class-level ``app = Klein()`` and an injected
:class:`~a3mail.http.admin.context.AdminContext`; :data:`GROUPS` lists them.  The OpenAPI
document (:mod:`a3mail.http.openapi`) describes exactly their routes (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from a3mail.http.admin.context import AdminContext
from a3mail.http.admin.domains import DomainsApi
from a3mail.http.admin.keys import KeysApi
from a3mail.http.admin.messages import MessagesApi
from a3mail.http.admin.monitoring import HealthApi, MetricsApi, PerformanceApi
from a3mail.http.admin.openapi_doc import OpenApiDoc
from a3mail.http.admin.queue import QueueApi
from a3mail.http.admin.security import SecurityApi
from a3mail.http.admin.server import ServerApi
from a3mail.http.admin.users import UsersApi
from a3mail.http.admin.webhooks import WebhooksApi
from a3mail.http.auth import Authenticator
from a3mail.http.live_limits import LiveLimits
from a3mail.http.ratelimit import RateLimiter
from a3mail.http.router import ApiRouter
from a3mail.http.surfaces import Surface

PREFIX = "/api/v1"

GROUPS: tuple[type, ...] = (
    KeysApi,
    UsersApi,
    DomainsApi,
    MessagesApi,
    ServerApi,
    QueueApi,
    WebhooksApi,
    SecurityApi,
    HealthApi,
    MetricsApi,
    PerformanceApi,
    OpenApiDoc,
)


def build_router(
    ctx: AdminContext, limiter: RateLimiter, groups: Sequence[type] = GROUPS
) -> ApiRouter:
    """The admin API resource over *ctx*'s store (groups instantiated with *ctx*)."""
    return ApiRouter(
        [group(ctx).app for group in groups],
        authenticator=Authenticator(ctx.store),
        limiter=limiter,
        limits=LiveLimits(lambda: ctx.config, getattr(ctx.store, "security", None)),
        clock=ctx.clock,
        metrics=getattr(ctx.runtime, "metrics", None),
        audit_write=ctx.audit_write,
    )


def build_surface(runtime: Any, clock: Any) -> Surface:
    """The admin surface of the ``http`` listener."""
    ctx = AdminContext(runtime.store, clock, runtime)
    limiter = RateLimiter(
        runtime.store.ratelimits, clock, window=runtime.config.http.rate_limit_window
    )
    router = build_router(ctx, limiter)
    return Surface("admin", (PREFIX,), router, start=limiter.start, stop=limiter.stop)
