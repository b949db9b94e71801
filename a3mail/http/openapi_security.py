"""JSON Schemas of the security API's responses, and its parameters (OpenAPI components)."""

from __future__ import annotations

from typing import Any

from a3mail.http.openapi_schemas import (
    BOOL,
    COUNT,
    INT,
    NUMBER,
    STR,
    TIME,
    Schema,
    array,
    envelope_of,
    nullable,
    obj,
    ref,
)
from a3mail.store.audit import SEVERITIES
from a3mail.store.security_report import CATEGORIES

_BLOCK = obj(
    {
        "id": INT,
        "ip_address": STR,
        "network": STR,
        "reason": STR,
        "created_at": TIME,
        "expires_at": nullable(TIME),
        "permanent": BOOL,
        "remaining_seconds": nullable(COUNT),
        "created_by": nullable(STR),
        "automatic": BOOL,
    }
)
_LIMIT = obj(
    {
        "max_requests": COUNT,
        "window_seconds": COUNT,
        "source": {"type": "string", "enum": ["config", "database"]},
        "applies_to": STR,
    }
)
_AUDIT = obj(
    {
        "id": STR,
        "timestamp": TIME,
        "event_type": {"type": "string", "enum": list(CATEGORIES)},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "outcome": {"type": "string", "enum": ["success", "failure"]},
        "source_ip": nullable(STR),
        "user_id": nullable(STR),
        "action": STR,
        "event": STR,
        "target": nullable(STR),
        "description": STR,
        "metadata": {"type": "object"},
    }
)


def _listed(item: str, key: str) -> Schema:
    """The envelope plus the A3Mailer-style ``key``, ``total``, ``page``, ``limit``."""
    base = envelope_of(item)
    extra = obj({key: array(ref(item)), "total": COUNT, "page": COUNT, "limit": COUNT})
    return {
        "type": "object",
        "properties": {**base["properties"], **extra["properties"]},
        "required": [*base["required"], *extra["required"]],
    }


SECURITY_SCHEMAS: dict[str, Schema] = {
    "BlockedIp": _BLOCK,
    "BlockedIpList": _listed("BlockedIp", "blocked_ips"),
    "BlockResult": {"allOf": [ref("BlockedIp"), obj({"created": BOOL})]},
    "UnblockedIp": {"allOf": [ref("BlockedIp"), obj({"unblocked": BOOL})]},
    "RateLimits": obj(
        {"global": _LIMIT, "per_ip": _LIMIT, "per_user": _LIMIT, "violations": COUNT}
    ),
    "AuditLogEntry": _AUDIT,
    "AuditLogList": _listed("AuditLogEntry", "logs"),
    "SecurityOverview": obj(
        {
            "security_score": NUMBER,
            "threat_level": {"type": "string", "enum": ["low", "medium", "high"]},
            "active_threats": COUNT,
            "blocked_ips": COUNT,
            "blocked_ips_automatic": COUNT,
            "failed_auth_attempts": COUNT,
            "successful_auth_attempts": COUNT,
            "auto_blocks_24h": COUNT,
            "rate_limit_violations": COUNT,
            "last_security_scan": TIME,
            "security_events": obj({"last_24h": COUNT, "last_7d": COUNT, "last_30d": COUNT}),
            "top_offending_ips": array(
                obj(
                    {
                        "ip_address": STR,
                        "failed_attempts": COUNT,
                        "users_tried": COUNT,
                        "last_seen": TIME,
                    }
                )
            ),
        }
    ),
}


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_IP_PATH = "The blocked address or network (a CIDR network URL-encoded: 10.0.0.0%2F8)."
_DAY = {"type": "string", "minLength": 1, "maxLength": 40}
SECURITY_PARAMETERS: dict[str, Schema] = {
    "ip_address": {
        "name": "ip_address",
        "in": "path",
        "required": True,
        "description": _IP_PATH,
        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    "include_expired": _query(
        "include_expired", {"type": "boolean"}, "Also list expired entries not pruned yet."
    ),
    "start_date": _query(
        "start_date", _DAY, "Entries at or after this date (YYYY-MM-DD) or date-time."
    ),
    "end_date": _query(
        "end_date", _DAY, "Entries before this date-time, or up to the end of this date."
    ),
    "event_type": _query(
        "event_type",
        {"type": "string", "minLength": 1, "maxLength": 100},
        f"A category ({', '.join(CATEGORIES)}) or an exact event (auth.failure, ip.block...).",
    ),
    "severity": _query("severity", {"type": "string", "enum": list(SEVERITIES)}, "Severity."),
    "user": _query(
        "user",
        {"type": "string", "minLength": 1, "maxLength": 320},
        "The user (actor), or the owner of the API key that acted.",
    ),
}
