"""Security controls: the IP blocklist, live rate limits, the audit log and the overview.

``GET /api/v1/security/blocked-ips``, ``POST /api/v1/security/block-ip``,
``DELETE /api/v1/security/blocked-ips/{ip_address}`` (a CIDR network URL-encoded:
``10.0.0.0%2F8``), ``GET/PUT /api/v1/security/rate-limits``,
``GET /api/v1/security/audit-logs``, ``GET /api/v1/security/overview``.  Reads need the
read permission; changes need admin.  See docs/security.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from klein import Klein

from a3mail.http.admin.context import AdminContext
from a3mail.http.admin.security_views import (
    audit_json,
    block_json,
    overview_json,
    rate_limits_json,
)
from a3mail.http.auth import ADMIN, READ
from a3mail.http.errors import field_error
from a3mail.http.live_limits import CATEGORIES, MAX_REQUESTS, MAX_WINDOW, effective_limits
from a3mail.http.pagination import envelope, page_params
from a3mail.http.responses import JsonResponse
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field, query_bool, query_str
from a3mail.store.audit import SEVERITIES
from a3mail.store.ipmatch import parse_network
from a3mail.store.security_report import CATEGORIES as EVENT_CATEGORIES
from a3mail.store.security_settings import RATE_LIMITS

MAX_DURATION = 10 * 365 * 86400  # ten years

BLOCK_IP = Body(
    {
        "ip_address": Field(
            "string",
            'An address ("192.0.2.7", "2001:db8::1") or CIDR network ("198.51.100.0/24").',
            required=True,
            minimum=1,
            maximum=100,
        ),
        "reason": Field("string", "Why (shown in the list and the audit log).", maximum=500),
        "duration": Field(
            "integer",
            "Seconds until the block expires.  Without it (and without permanent: false)"
            " the block is permanent.",
            nullable=True,
            minimum=1,
            maximum=MAX_DURATION,
        ),
        "permanent": Field(
            "boolean",
            "true: never expires (duration must then be absent or null); false: duration"
            " is required.",
        ),
    }
)

_LIMIT = Body(
    {
        "max_requests": Field(
            "integer",
            "Requests allowed per window (0 = no limit).",
            required=True,
            minimum=0,
            maximum=MAX_REQUESTS,
        ),
        "window_seconds": Field(
            "integer",
            "The window's length in seconds.",
            required=True,
            minimum=1,
            maximum=MAX_WINDOW,
        ),
    }
)
SET_RATE_LIMITS = Body(
    {
        category: Field("object", f"The {category} limit (absent: unchanged).", body=_LIMIT)
        for category in CATEGORIES
    },
    "Categories not given keep their current values.",
)


class SecurityApi:
    """The security controls of the admin API."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    # -- blocklist ---------------------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/security/blocked-ips", READ)
    async def list_blocked_ips(self, request: Any) -> dict[str, Any]:
        """Blocked addresses and networks in force, newest first (``?include_expired=true``
        also lists expired entries not pruned yet)."""
        page = page_params(request)
        include_expired = query_bool(request, "include_expired")
        entries, total = await self.ctx.store.blocklist.entries(
            limit=page.limit, offset=page.offset, include_expired=include_expired
        )
        now = self.ctx.now()
        data = [block_json(e, now) for e in entries]
        result = envelope(request, data, total, page)
        result.update(blocked_ips=data, total=total, page=page.page, limit=page.limit)
        return result

    @endpoint(app, "POST", "/api/v1/security/block-ip", ADMIN)
    async def block_ip(self, request: Any) -> JsonResponse:
        """Block an address or network (replacing the reason and expiry of an entry for the
        same network: ``created`` is then false)."""
        body = self.ctx.body(request, BLOCK_IP)
        try:
            network = parse_network(body["ip_address"])
        except ValueError:
            raise field_error(
                "ip_address",
                "ip_address must be an IP address or a CIDR network"
                " without host bits (like 198.51.100.0/24)",
                body["ip_address"],
            ) from None
        duration = body.get("duration")
        permanent = body.get("permanent")
        if permanent is True and duration is not None:
            raise field_error("duration", "a permanent block takes no duration", duration)
        if permanent is False and duration is None:
            raise field_error("duration", "duration is required when permanent is false")
        caller = self.ctx.principal(request)
        entry, created = await self.ctx.store.blocklist.block(
            str(network),
            reason=body.get("reason", ""),
            duration=None if duration is None else float(duration),
            created_by=caller.actor,
        )
        await self.ctx.audit(
            request,
            "ip.block",
            entry.network,
            {"reason": entry.reason, "duration": duration, "permanent": entry.permanent},
            severity="warning",
        )
        return JsonResponse({**block_json(entry, self.ctx.now()), "created": created}, 201)

    @endpoint(app, "DELETE", "/api/v1/security/blocked-ips/<path:ip_address>", ADMIN)
    async def unblock_ip(self, request: Any, ip_address: str) -> dict[str, Any]:
        """Remove the entry for exactly this address or network (404 if none)."""
        try:
            network = parse_network(ip_address[:100])
        except ValueError:
            raise field_error(
                "ip_address", "not an IP address or CIDR network", ip_address
            ) from None
        entry = await self.ctx.store.blocklist.unblock(str(network))
        await self.ctx.audit(request, "ip.unblock", entry.network, {"reason": entry.reason})
        return {"unblocked": True, **block_json(entry, self.ctx.now())}

    # -- rate limits -------------------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/security/rate-limits", READ)
    async def get_rate_limits(self, request: Any) -> dict[str, Any]:
        """The rate limits in force, where each comes from, and what each applies to."""
        stored = await self.ctx.store.security.get(RATE_LIMITS)
        limits, sources = effective_limits(self.ctx.config.http, stored)
        return rate_limits_json(limits, sources)

    @endpoint(app, "PUT", "/api/v1/security/rate-limits", ADMIN)
    async def set_rate_limits(self, request: Any) -> dict[str, Any]:
        """Change some or all limits; every a3mail process applies them within moments."""
        body = self.ctx.body(request, SET_RATE_LIMITS)
        stored = await self.ctx.store.security.get(RATE_LIMITS) or {}
        new = {**stored, **body}
        caller = self.ctx.principal(request)
        await self.ctx.store.security.put(RATE_LIMITS, new, caller.actor)
        await self.ctx.audit(request, "security.rate_limits", None, {"changed": body})
        limits, sources = effective_limits(self.ctx.config.http, new)
        return rate_limits_json(limits, sources)

    # -- audit log and overview --------------------------------------------------------

    @endpoint(app, "GET", "/api/v1/security/audit-logs", READ)
    async def audit_logs(self, request: Any) -> dict[str, Any]:
        """A page of audit entries, newest first, filtered by date, type, severity, user."""
        page = page_params(request)
        start = _date_param(request, "start_date", end=False)
        end = _date_param(request, "end_date", end=True)
        if start is not None and end is not None and start >= end:
            raise field_error("end_date", "end_date must be after start_date")
        event_type = query_str(request, "event_type", max_length=100) or None
        category = None
        if event_type in EVENT_CATEGORIES:
            category, event_type = event_type, None
        severity = query_str(request, "severity", max_length=20) or None
        if severity is not None and severity not in SEVERITIES:
            raise field_error("severity", f"severity must be one of {', '.join(SEVERITIES)}")
        user = query_str(request, "user", max_length=320) or None
        entries, total = await self.ctx.store.security_report.audit_page(
            start=start,
            end=end,
            category=category,
            event_type=event_type,
            severity=severity,
            user=user,
            limit=page.limit,
            offset=page.offset,
        )
        data = [audit_json(e) for e in entries]
        result = envelope(request, data, total, page)
        result.update(logs=data, total=total, page=page.page, limit=page.limit)
        return result

    @endpoint(app, "GET", "/api/v1/security/overview", READ)
    async def overview(self, request: Any) -> dict[str, Any]:
        """Figures computed now from the audit log and the blocklist."""
        figures = await self.ctx.store.security_report.figures()
        return overview_json(figures, self.ctx.now())


def _date_param(request: Any, name: str, *, end: bool) -> datetime | None:
    """``YYYY-MM-DD`` (a whole day: an end date includes that day) or an ISO date-time."""
    text = query_str(request, name, max_length=40)
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise field_error(
            name, f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time", text
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
