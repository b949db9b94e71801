"""The ``freemail`` listener: one :class:`~a3mail.http.factory.HttpSite` serving the
freemail API (``listeners.PROTOCOL_FACTORIES["freemail"]`` names :func:`build_freemail`).

JSON bodies are capped at ``http.max_body``; ``POST /receive`` takes a whole message, up
to ``limits.max_message_size`` (the Site's cap is the larger of the two).  Requests are
rate limited with ``[http]``'s limits: login attempts and unauthenticated requests per
client address, the others per logged-in principal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a3mail.auth.guard import LoginGuard
from a3mail.http.factory import HttpSite
from a3mail.http.freemail.auth import Sessions
from a3mail.http.freemail.context import FreemailContext
from a3mail.http.freemail.demo import DemoData
from a3mail.http.freemail.mail import MailHandlers
from a3mail.http.freemail.mailboxes import MailboxHandlers
from a3mail.http.freemail.receive import ReceiveHandler
from a3mail.http.freemail.resource import FreemailResource
from a3mail.http.freemail.sending import SendHandlers
from a3mail.http.freemail.sessions import SessionSigner, load_secret
from a3mail.http.freemail.users import UserHandlers
from a3mail.http.ratelimit import RateLimiter
from a3mail.http.router import Limits, LimitsFromConfig
from a3mail.http.surfaces import HttpRoot, Surface
from a3mail.runtime import Runtime

#: room for the request line and headers around the largest message
BODY_SLACK = 64 * 1024


def build_resource(
    ctx: FreemailContext,
    *,
    limiter: RateLimiter | None = None,
    limits: Callable[[], Limits] = Limits,
) -> FreemailResource:
    """The freemail resource over *ctx* (the session key from the configuration or the
    data directory)."""
    config = ctx.config
    secret = load_secret(config.freemail.session_secret, config.data_dir)
    signer = SessionSigner(secret, config.freemail.session_lifetime)
    guard = LoginGuard(ctx.store, ctx.clock, config.auth.failure_delay)
    groups = {
        "sessions": Sessions(ctx, signer, guard),
        "mailboxes": MailboxHandlers(ctx),
        "mail": MailHandlers(ctx),
        "sending": SendHandlers(ctx),
        "users": UserHandlers(ctx),
        "receive": ReceiveHandler(ctx),
    }
    return FreemailResource(
        groups,
        DemoData(ctx),
        lambda: int(ctx.config.http.max_body),
        limiter=limiter,
        limits=limits,
    )


def build_site(runtime: Runtime, clock: Any = None, **context: Any) -> HttpSite:
    """The Site of the ``freemail`` listener (its rate limiter starts and stops with the
    port); *context*: extra FreemailContext arguments (tests pass fast password
    functions)."""
    clock = clock if clock is not None else runtime.reactor
    ctx = FreemailContext(runtime.store, lambda: runtime.config, clock, **context)
    limiter = RateLimiter(
        runtime.store.ratelimits, clock, window=runtime.config.http.rate_limit_window
    )
    resource = build_resource(ctx, limiter=limiter, limits=LimitsFromConfig(lambda: runtime.config))
    surface = Surface("freemail", ("",), resource, start=limiter.start, stop=limiter.stop)
    return HttpSite(
        HttpRoot([surface], fallback=surface),
        [surface],
        max_body=lambda: max(
            int(runtime.config.http.max_body),
            int(runtime.config.limits.max_message_size) + BODY_SLACK,
        ),
        clock=clock,
        timeout=runtime.config.http.request_timeout,
    )


def build_freemail(runtime: Runtime) -> HttpSite:
    """The protocol factory of the ``freemail`` listener."""
    return build_site(runtime)
