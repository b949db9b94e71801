"""The JSON shapes of the security API (field names as in the A3Mailer API reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from a3mail.http.ratelimit import STATS as RATE_LIMIT_STATS
from a3mail.store.blocklist import IpBlock
from a3mail.store.records import AuditEntry
from a3mail.store.security_report import SecurityFigures, category_of

APPLIES_TO = {
    "global": "Every request to the admin API (/api/v1), all callers together (no"
    " configuration key; 0 = no limit).",
    "per_ip": "Requests without a valid API key to the admin and temp-mail APIs, per client"
    " address (config: http.rate_limit_per_ip, http.rate_limit_window).",
    "per_user": "Requests with a valid API key to the admin and temp-mail APIs, per key, one"
    " count across both (config: http.rate_limit_per_key, http.rate_limit_window).",
}

# Audit event types -> the spec's "action" names where it has one.
_ACTIONS = {
    "auth.success": "login_success",
    "auth.failure": "login_failed",
    "ip.block": "ip_blocked",
    "ip.auto_block": "ip_auto_blocked",
    "ip.unblock": "ip_unblocked",
    "api_key.create": "api_key_created",
    "api_key.revoke": "api_key_revoked",
}


def block_json(entry: IpBlock, now: datetime) -> dict[str, Any]:
    """A blocklist entry."""
    remaining = None
    if entry.expires_at is not None:
        remaining = max(0, int((entry.expires_at - now).total_seconds()))
    return {
        "id": entry.id,
        "ip_address": entry.address,
        "network": entry.network,
        "reason": entry.reason,
        "created_at": entry.created_at,
        "expires_at": entry.expires_at,
        "permanent": entry.permanent,
        "remaining_seconds": remaining,
        "created_by": entry.created_by,
        "automatic": entry.automatic,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit log entry."""
    details = dict(entry.details)
    return {
        "id": f"audit_{entry.id}",
        "timestamp": entry.at,
        "event_type": category_of(entry.event_type),
        "severity": entry.severity,
        "outcome": "success" if entry.success else "failure",
        "source_ip": entry.ip,
        "user_id": entry.actor,
        "action": _ACTIONS.get(entry.event_type, entry.event_type.replace(".", "_")),
        "event": entry.event_type,
        "target": entry.target,
        "description": describe(entry),
        "metadata": details,
    }


def describe(entry: AuditEntry) -> str:
    """One line saying what happened."""
    who = entry.actor or "unknown"
    protocol = str(entry.details.get("protocol", "")).upper()
    if entry.event_type == "auth.failure":
        return f"Failed {protocol} login for {who}".replace("  ", " ")
    if entry.event_type == "auth.success":
        return f"{protocol} login by {who}".strip()
    if entry.event_type == "ip.auto_block":
        return f"{entry.target} blocked automatically after repeated failed logins"
    target = f" on {entry.target}" if entry.target else ""
    return f"{entry.event_type}{target} by {who}"


def threat_level(figures: SecurityFigures) -> str:
    """high, medium or low (the rules are in docs/security.md)."""
    if figures.attacking_addresses_1h >= 10 or figures.failed_logins_24h >= 1000:
        return "high"
    if figures.attacking_addresses_1h >= 1 or figures.failed_logins_24h >= 100:
        return "medium"
    return "low"


def security_score(figures: SecurityFigures) -> float:
    """1.0 minus 0.05 per address attacking now (unblocked) and 0.01 per 100 failed logins
    in the last 24 hours, at least 0."""
    penalty = 0.05 * figures.attacking_addresses_1h + 0.01 * (figures.failed_logins_24h / 100)
    return round(max(0.0, 1.0 - penalty), 2)


def overview_json(figures: SecurityFigures, now: datetime) -> dict[str, Any]:
    """The security overview."""
    return {
        "security_score": security_score(figures),
        "threat_level": threat_level(figures),
        "active_threats": figures.attacking_addresses_1h,
        "blocked_ips": figures.blocked_now,
        "blocked_ips_automatic": figures.blocked_automatic_now,
        "failed_auth_attempts": figures.failed_logins_24h,
        "successful_auth_attempts": figures.successful_logins_24h,
        "auto_blocks_24h": figures.auto_blocks_24h,
        "rate_limit_violations": RATE_LIMIT_STATS.refused,
        "last_security_scan": now,
        "security_events": figures.security_events,
        "top_offending_ips": [
            {
                "ip_address": o.ip,
                "failed_attempts": o.failures,
                "users_tried": o.users,
                "last_seen": o.last_seen,
            }
            for o in figures.top_offenders
        ],
    }


def rate_limits_json(limits: dict[str, dict[str, int]], sources: dict[str, str]) -> dict[str, Any]:
    """The rate limits in force."""
    return {
        **{
            name: {**value, "source": sources[name], "applies_to": APPLIES_TO[name]}
            for name, value in limits.items()
        },
        "violations": RATE_LIMIT_STATS.refused,
    }
