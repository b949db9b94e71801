"""The OpenAPI 3.1 document of the admin API (``GET /api/v1/openapi.json``), as data.

:data:`OPERATIONS` lists every operation once: method, path, permission, parameters, body
and success response.  Request body schemas come from the same :class:`Body` declarations
that validate requests; response schemas are in :mod:`a3mail.http.openapi_schemas`.
``tests/http/test_openapi.py`` checks that the operations are exactly the Klein routes.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

import a3mail
from a3mail.http.admin import domains, keys, monitoring, queue, server, users, webhooks
from a3mail.http.admin import security as security_api
from a3mail.http.admin.messages import MAX_OFFSET
from a3mail.http.openapi_monitoring import MONITORING_SCHEMAS
from a3mail.http.openapi_schemas import SCHEMAS, ref
from a3mail.http.openapi_security import SECURITY_PARAMETERS, SECURITY_SCHEMAS
from a3mail.http.pagination import MAX_LIMIT
from a3mail.http.validation import Body

Schema = dict[str, Any]
UINT32 = 4294967295


def _param(
    name: str, where: str, schema: Schema, description: str, required: bool = False
) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


_STRING = {"type": "string", "minLength": 1, "maxLength": 256}
PARAMETERS: dict[str, Schema] = {
    "page": _param(
        "page",
        "query",
        {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "Page number, from 1.",
    ),
    "limit": _param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        f"Items per page (default 20, at most {MAX_LIMIT}).",
    ),
    "domain": _param("domain", "query", _STRING, "Only users of this domain."),
    "search": _param("search", "query", _STRING, "Only names containing this text."),
    "include_revoked": _param(
        "include_revoked", "query", {"type": "boolean"}, "Also list revoked keys."
    ),
    "force": _param(
        "force",
        "query",
        {"type": "boolean"},
        "Delete the domain even with users (their accounts and mail go too).",
    ),
    "mailbox": _param(
        "mailbox",
        "query",
        {"type": "string", "minLength": 1, "maxLength": 512},
        "Mailbox name (default INBOX).",
    ),
    "offset": _param(
        "offset",
        "query",
        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
        "Messages to skip (instead of page).",
    ),
    "order": _param(
        "order",
        "query",
        {"type": "string", "enum": ["desc", "asc"]},
        "desc (newest first, the default) or asc.",
    ),
    "format": _param(
        "format",
        "query",
        {"type": "string", "enum": ["json", "raw"]},
        "json (default) or raw: the stored message as message/rfc822.",
    ),
    "queue": _param(
        "queue",
        "query",
        {"type": "string", "enum": list(queue.QUEUE_CHOICES)},
        "One named queue (default all).",
    ),
    "user_id": _param(
        "user_id",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 320},
        'The user\'s id ("17") or address.',
    ),
    "domain_id": _param(
        "domain_id",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 253},
        "The domain's id or name.",
    ),
    "key_id": _param(
        "key_id",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 100},
        "The key's public id (key_...).",
    ),
    "uid": _param(
        "uid",
        "path",
        {"type": "integer", "minimum": 1, "maximum": UINT32},
        "The message UID in the mailbox.",
    ),
    "queue_name": _param(
        "queue_name",
        "path",
        {"type": "string", "enum": list(queue.QUEUE_CHOICES)},
        "incoming, outgoing, retry (or deferred), bounce, or all.",
    ),
    "component": _param(
        "component",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 100},
        "database, disk_space, memory, queue or listeners.",
    ),
    "metric_name": _param(
        "metric_name",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 100},
        "The custom metric's name.",
    ),
    "webhook_id": _param(
        "webhook_id",
        "path",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "The webhook's id.",
    ),
    **SECURITY_PARAMETERS,
}


@attrs.frozen
class Operation:
    """One documented operation."""

    method: str
    path: str
    operation_id: str
    tag: str
    permission: str | None
    response: str  # a component schema name ("OpenApi": this document)
    status: int
    summary: str
    params: tuple[str, ...] = ()
    body: Body | None = None
    body_required: bool = True
    errors: tuple[int, ...] = ()


# method, path, operationId (the Klein endpoint), tag, permission, response, status, summary
_TABLE = """
POST   /api/v1/auth/keys                         create_key      keys     admin NewApiKey      201 Create an API key
GET    /api/v1/auth/keys                         list_keys       keys     admin ApiKeyList     200 List API keys
DELETE /api/v1/auth/keys/{key_id}                revoke_key      keys     admin RevokedApiKey  200 Revoke an API key
GET    /api/v1/users                             list_users      users    read  UserList       200 List users
POST   /api/v1/users                             create_user     users    write User           201 Create a user
POST   /api/v1/users/batch                       create_users    users    write BatchResult    200 Create several users
GET    /api/v1/users/{user_id}                   get_user        users    read  User           200 Get a user
PUT    /api/v1/users/{user_id}                   update_user     users    write User           200 Change a user
DELETE /api/v1/users/{user_id}                   delete_user     users    write DeletedUser    200 Delete a user and their mail
GET    /api/v1/users/{user_id}/quota             get_quota       users    read  Quota          200 Get a user's quota
PUT    /api/v1/users/{user_id}/quota             set_quota       users    write Quota          200 Set a user's quota
GET    /api/v1/users/{user_id}/stats             user_stats      users    read  UserStats      200 A user's statistics
GET    /api/v1/users/{user_id}/messages          list_messages   messages read  MessageList    200 List a mailbox
GET    /api/v1/users/{user_id}/messages/{uid}    get_message     messages read  Message        200 Get a message
DELETE /api/v1/users/{user_id}/messages/{uid}    delete_message  messages write DeletedMessage 200 Delete a message
GET    /api/v1/domains                           list_domains    domains  read  DomainList     200 List domains
POST   /api/v1/domains                           create_domain   domains  write Domain         201 Add a domain
DELETE /api/v1/domains/{domain_id}               delete_domain   domains  write DeletedDomain  200 Remove a domain
GET    /api/v1/server/info                       server_info     server   read  ServerInfo     200 Server information
POST   /api/v1/server/reload                     reload          server   admin Reload         200 Reload the configuration
POST   /api/v1/server/restart                    restart         server   admin Restart        202 Drain the sessions and restart
GET    /api/v1/stats                             stats           server   read  Stats          200 Server statistics
GET    /api/v1/queue/status                      queue_status    queue    read  QueueStatus    200 Queue totals
GET    /api/v1/queue                             list_queue      queue    read  QueueList      200 List queue entries
POST   /api/v1/queue/retry                       retry           queue    write RetryResult    200 Retry waiting entries now
DELETE /api/v1/queue/{queue_name}                purge           queue    write PurgeResult    200 Empty a named queue
POST   /api/v1/webhooks                          create_webhook  webhooks write Webhook        201 Register a webhook
GET    /api/v1/webhooks                          list_webhooks   webhooks read  WebhookList    200 List webhooks
DELETE /api/v1/webhooks/{webhook_id}             delete_webhook  webhooks write DeletedWebhook 200 Remove a webhook
GET    /api/v1/webhooks/{webhook_id}/deliveries  list_deliveries webhooks read  DeliveryList   200 A webhook's deliveries
GET    /api/v1/health/detailed                   health_detailed health   read  HealthReport   200 Every health check in detail
POST   /api/v1/health/check/{component}          health_check    health   read  HealthCheck    200 Run one health check now
GET    /api/v1/metrics/system                    system_metrics  metrics  read  SystemMetrics  200 Machine and process figures
GET    /api/v1/metrics/application               application_metrics metrics read ApplicationMetrics 200 Request, session, queue and cache figures
POST   /api/v1/metrics/custom                    set_custom_metric metrics admin CustomMetric 200 Add to a counter or set a gauge
GET    /api/v1/metrics/custom/{metric_name}      get_custom_metric metrics read CustomMetric   200 Get a custom metric
GET    /api/v1/performance/stats                 performance_stats performance read PerformanceStats 200 Pool, cache and request figures
GET    /api/v1/performance/recommendations       performance_recommendations performance read Recommendations 200 Advice from the measured figures
POST   /api/v1/performance/optimize              optimize        performance admin OptimizeResult 200 Resize the pool or caches now
GET    /api/v1/security/blocked-ips              list_blocked_ips security read  BlockedIpList  200 List blocked addresses
POST   /api/v1/security/block-ip                 block_ip        security admin BlockResult    201 Block an address or network
DELETE /api/v1/security/blocked-ips/{ip_address} unblock_ip      security admin UnblockedIp    200 Unblock an address or network
GET    /api/v1/security/rate-limits              get_rate_limits security read  RateLimits     200 The rate limits in force
PUT    /api/v1/security/rate-limits              set_rate_limits security admin RateLimits     200 Change the rate limits live
GET    /api/v1/security/audit-logs               audit_logs      security read  AuditLogList   200 Query the audit log
GET    /api/v1/security/overview                 overview        security read  SecurityOverview 200 Security figures
GET    /api/v1/openapi.json                      openapi         meta     -     OpenApi        200 This document
"""  # noqa: E501 - one operation per line reads best
_LIST = ("page", "limit")
_PARAMS: dict[str, tuple[str, ...]] = {
    "list_keys": (*_LIST, "include_revoked"),
    "revoke_key": ("key_id",),
    "list_users": (*_LIST, "domain", "search"),
    "list_messages": ("mailbox", "limit", "offset", "page", "order"),
    "get_message": ("mailbox", "format"),
    "delete_message": ("mailbox",),
    "list_domains": (*_LIST, "search"),
    "delete_domain": ("domain_id", "force"),
    "list_queue": (*_LIST, "queue"),
    "purge": ("queue_name",),
    "list_webhooks": _LIST,
    "list_blocked_ips": (*_LIST, "include_expired"),
    "audit_logs": (*_LIST, "start_date", "end_date", "event_type", "severity", "user"),
    "list_deliveries": _LIST,
}
_BODIES: dict[str, Body] = {
    "create_key": keys.CREATE_KEY,
    "create_user": users.CREATE_USER,
    "create_users": users.BATCH,
    "update_user": users.UPDATE_USER,
    "set_quota": users.SET_QUOTA,
    "create_domain": domains.CREATE_DOMAIN,
    "reload": server.EMPTY,
    "health_check": monitoring.EMPTY,
    "set_custom_metric": monitoring.CUSTOM_METRIC,
    "optimize": monitoring.OPTIMIZE,
    "restart": server.EMPTY,
    "retry": queue.RETRY,
    "create_webhook": webhooks.CREATE_WEBHOOK,
    "block_ip": security_api.BLOCK_IP,
    "set_rate_limits": security_api.SET_RATE_LIMITS,
}
_OPTIONAL_BODIES = ("health_check", "reload", "restart", "retry")
_ERRORS: dict[str, tuple[int, ...]] = {
    "create_key": (403,),
    "create_user": (409,),
    "update_user": (404, 409),
    "set_quota": (404, 409),
    "delete_domain": (404, 409),
    "create_domain": (409,),
    "create_webhook": (404, 409),
    "unblock_ip": (404,),
    "set_custom_metric": (409,),
}
_PATH_PARAM = re.compile(r"{(\w+)}")


def _operations() -> tuple[Operation, ...]:
    found = []
    for line in _TABLE.strip().splitlines():
        method, path, op_id, tag, permission, response, status, summary = line.split(None, 7)
        in_path = tuple(_PATH_PARAM.findall(path))
        errors = _ERRORS.get(op_id, (404,) if in_path else ())
        found.append(
            Operation(
                method=method,
                path=path,
                operation_id=op_id,
                tag=tag,
                permission=None if permission == "-" else permission,
                response=response,
                status=int(status),
                summary=summary,
                params=tuple(dict.fromkeys((*in_path, *_PARAMS.get(op_id, ())))),
                body=_BODIES.get(op_id),
                body_required=op_id not in _OPTIONAL_BODIES,
                errors=errors,
            )
        )
    return tuple(found)


OPERATIONS = _operations()

_ERROR_TEXT = {
    400: "Invalid request (the field is named in details).",
    401: "No valid API key (missing, unknown, expired or revoked).",
    403: "The key lacks the permission.",
    404: "No such resource.",
    409: "Conflict with the current state.",
    413: "The body is over http.max_body.",
    429: "Rate limit exceeded (see Retry-After).",
    500: "Internal error (logged with the request id).",
    503: "The database is unavailable; retry shortly.",
}
_HEADERS = {
    name: {"$ref": f"#/components/headers/{name}"}
    for name in ("X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
}


def _responses(op: Operation) -> dict[str, Any]:
    success: Schema = {"description": op.summary, "headers": _HEADERS}
    if op.response == "OpenApi":
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    elif op.operation_id == "get_message":
        success["content"] = {
            "application/json": {"schema": ref("Message")},
            "message/rfc822": {"schema": {"type": "string", "contentMediaType": "message/rfc822"}},
        }
    else:
        success["content"] = {"application/json": {"schema": ref(op.response)}}
    statuses = set(op.errors) | {400, 401, 429, 500, 503}
    if op.permission is not None:
        statuses.add(403)
    if op.body is not None:
        statuses.add(413)
    responses: dict[str, Any] = {str(op.status): success}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "headers": _HEADERS,
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return responses


def _operation(op: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [PARAMETERS[p] for p in op.params],
        "responses": _responses(op),
        "x-a3mail-permission": op.permission,
    }
    if op.permission is None:
        result["security"] = []
    else:
        result["description"] = f"Needs an API key with the {op.permission} permission."
    if op.body is not None:
        result["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": op.body.json_schema()}},
        }
    return result


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    header_int = {"schema": {"type": "integer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "a3mail admin API",
            "version": a3mail.__version__,
            "description": "Users, domains, quotas, messages, statistics, API keys, the"
            " outbound queue and webhooks.  See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: mk_live_... or its sk_live_... secret.",
                }
            },
            "schemas": {**SCHEMAS, **MONITORING_SCHEMAS, **SECURITY_SCHEMAS},
            "headers": {
                "X-Request-Id": {
                    "description": "The request's id (also in logs).",
                    "schema": {"type": "string"},
                },
                "X-RateLimit-Limit": {"description": "Requests allowed per window.", **header_int},
                "X-RateLimit-Remaining": {
                    "description": "Requests left in this window.",
                    **header_int,
                },
                "X-RateLimit-Reset": {
                    "description": "When the window ends (epoch seconds).",
                    **header_int,
                },
            },
        },
    }
