"""JSON Schemas of the admin API's responses (components of the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from a3mail.http.errors import CODES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object whose properties are all required except *optional*."""
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        **extra,
    }


def array(items: Schema) -> Schema:
    """An array of *items*."""
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    """*schema* or null."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
TIME: Schema = {"type": "string", "format": "date-time"}
ID: Schema = {"type": "string", "pattern": "^[0-9]+$", "description": "A number, as a string."}


def envelope_of(item: str, meta: Schema | None = None) -> Schema:
    """A list response of *item* objects."""
    return obj({"data": array(ref(item)), "meta": meta or ref("Meta"), "links": ref("Links")})


SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {"type": "string", "enum": sorted(set(CODES.values()))},
                    "message": STR,
                    "details": {"type": "object"},
                    "timestamp": TIME,
                    "request_id": STR,
                }
            )
        }
    ),
    "Meta": obj(
        {"page": COUNT, "limit": COUNT, "total": COUNT, "total_pages": COUNT},
        description="Pagination: the page (from 1), its size, the item and page counts.",
    ),
    "Links": obj(
        {"first": STR, "last": STR, "prev": nullable(STR), "next": nullable(STR)},
        description="Paths of the first, last, previous and next pages.",
    ),
    "User": obj(
        {
            "id": ID,
            "email": STR,
            "username": nullable(STR),
            "display_name": STR,
            "domain": STR,
            "role": {"type": "string", "enum": ["user", "admin"]},
            "enabled": BOOL,
            "quota": COUNT,
            "used": INT,
            "used_quota": INT,
            "files_count": INT,
            "groups": array(STR),
            "blockchain_address": nullable(STR),
            "created_at": TIME,
            "updated_at": TIME,
            "last_login": nullable(TIME),
        }
    ),
    "UserList": obj(
        {
            "data": array(ref("User")),
            "meta": ref("Meta"),
            "links": ref("Links"),
            "users": array(ref("User")),
            "total": COUNT,
            "page": COUNT,
            "limit": COUNT,
        },
        description="data/meta/links, plus users/total/page/limit for A3Mailer-style clients.",
    ),
    "BatchResult": obj(
        {
            "data": array(
                obj(
                    {
                        "index": COUNT,
                        "email": STR,
                        "status": {"type": "string", "enum": ["created", "failed"]},
                        "user": ref("User"),
                        "error": obj({"code": STR, "message": STR, "details": {"type": "object"}}),
                    },
                    optional=("user", "error"),
                )
            ),
            "created": COUNT,
            "failed": COUNT,
        }
    ),
    "Quota": obj({"quota": COUNT, "used": INT, "percentage": NUMBER, "files_count": INT}),
    "UserStats": obj(
        {
            "id": ID,
            "email": STR,
            "quota": COUNT,
            "used": INT,
            "percentage": NUMBER,
            "files_count": INT,
            "messages_total": INT,
            "unseen_total": INT,
            "messages_today": COUNT,
            "last_message_at": nullable(TIME),
            "last_login": nullable(TIME),
            "mailboxes": array(
                obj(
                    {
                        "name": STR,
                        "special_use": nullable(STR),
                        "messages": INT,
                        "unseen": INT,
                        "size": INT,
                    }
                )
            ),
        }
    ),
    "DeletedUser": obj({"deleted": BOOL, "id": ID, "email": STR}),
    "Domain": obj(
        {
            "id": ID,
            "name": STR,
            "domain": STR,
            "enabled": BOOL,
            "max_users": nullable(COUNT),
            "max_quota": nullable(COUNT),
            "users_count": COUNT,
            "tempmail": BOOL,
            "created_at": TIME,
        }
    ),
    "DomainList": envelope_of("Domain"),
    "DeletedDomain": obj({"deleted": BOOL, "id": ID, "name": STR}),
    "ApiKey": obj(
        {
            "key_id": STR,
            "name": STR,
            "key_prefix": STR,
            "permissions": array({"type": "string", "enum": ["read", "write", "admin"]}),
            "user": nullable(STR),
            "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
            "created_at": TIME,
            "expires_at": nullable(TIME),
            "last_used_at": nullable(TIME),
            "revoked_at": nullable(TIME),
        }
    ),
    "ApiKeyList": envelope_of("ApiKey"),
    "NewApiKey": obj(
        {
            "key_id": STR,
            "api_key": {"type": "string", "description": "The sk_live_ secret token."},
            "key": {"type": "string", "description": "The mk_live_ API key token."},
            "name": STR,
            "permissions": array(STR),
            "created_at": TIME,
            "expires_at": nullable(TIME),
        },
        description="Both tokens authenticate the key; they are shown only here.",
    ),
    "RevokedApiKey": {"allOf": [ref("ApiKey"), obj({"revoked": BOOL})]},
    "MessageSummary": obj(
        {
            "uid": COUNT,
            "from": STR,
            "to": array(STR),
            "subject": STR,
            "date": TIME,
            "received_at": TIME,
            "size": COUNT,
            "flags": array(STR),
            "has_attachments": BOOL,
        }
    ),
    "MessageList": envelope_of(
        "MessageSummary",
        {
            "allOf": [
                ref("Meta"),
                obj({"offset": COUNT, "mailbox": STR, "unseen": INT}),
            ]
        },
    ),
    "Address": obj({"name": STR, "address": STR}),
    "Message": obj(
        {
            "uid": COUNT,
            "mailbox": STR,
            "from": STR,
            "to": array(STR),
            "cc": array(STR),
            "addresses": obj(
                {
                    "from": array(ref("Address")),
                    "to": array(ref("Address")),
                    "cc": array(ref("Address")),
                    "reply_to": array(ref("Address")),
                }
            ),
            "subject": STR,
            "date": TIME,
            "received_at": TIME,
            "size": COUNT,
            "flags": array(STR),
            "message_id": nullable(STR),
            "headers": array(obj({"name": STR, "value": STR})),
            "text": STR,
            "html": STR,
            "attachments": array(
                obj(
                    {
                        "filename": nullable(STR),
                        "content_type": nullable(STR),
                        "size": nullable(INT),
                        "content_id": nullable(STR),
                        "disposition": nullable(STR),
                        "section": nullable(STR),
                    }
                )
            ),
            "verification_code": nullable(STR),
        }
    ),
    "DeletedMessage": obj({"deleted": BOOL, "uid": COUNT, "mailbox": STR}),
    "ServerInfo": obj(
        {
            "version": STR,
            "build_date": TIME,
            "uptime": COUNT,
            "started_at": TIME,
            "hostname": STR,
            "features": array(STR),
            "listeners": {"type": "object", "additionalProperties": STR},
            "status": {"type": "string", "enum": ["running"]},
        }
    ),
    "Reload": obj(
        {
            "status": {"type": "string", "enum": ["reloaded"]},
            "source": nullable(STR),
            "changed": array(STR),
            "applied": array(STR),
            "restart_required": array(STR),
            "tls": obj({"certificate": STR, "reloaded": BOOL}),
        }
    ),
    "Restart": obj(
        {
            "status": {"type": "string", "enum": ["restarting"]},
            "drain_timeout": {"type": "number"},
            "mode": {"type": "string", "enum": ["exec", "exit"]},
        }
    ),
    "Stats": obj(
        {
            "uptime": COUNT,
            "users_total": COUNT,
            "domains_total": COUNT,
            "sessions_active": COUNT,
            "messages_total": INT,
            "messages_today": COUNT,
            "storage_used": INT,
            "smtp": obj(
                {
                    "received": COUNT,
                    "rejected": COUNT,
                    "connections": COUNT,
                    "connections_active": COUNT,
                    "sent": COUNT,
                },
                optional=("sent",),
                description="This process's SMTP counters since it started.",
            ),
            "imap": obj(
                {"connections": COUNT, "connections_active": COUNT, "commands": COUNT},
                description="This process's IMAP connections and commands since it started.",
            ),
            "pop3": obj(
                {"connections": COUNT, "connections_active": COUNT, "commands": COUNT},
                description="This process's POP3 connections and commands since it started.",
            ),
        },
        optional=("smtp",),
    ),
    "QueueStatus": obj(
        {
            "total_messages": COUNT,
            "active_messages": COUNT,
            "deferred_messages": COUNT,
            "bounced_messages": COUNT,
            "queues": obj({"incoming": COUNT, "outgoing": COUNT, "retry": COUNT, "bounce": COUNT}),
            "states": {"type": "object", "additionalProperties": COUNT},
        }
    ),
    "QueueEntry": obj(
        {
            "id": ID,
            "message_id": ID,
            "queue": nullable({"type": "string", "enum": ["outgoing", "retry", "bounce"]}),
            "state": STR,
            "sender": STR,
            "recipients": array(STR),
            "domain": STR,
            "attempts": COUNT,
            "next_attempt_at": TIME,
            "last_error": nullable(STR),
            "size": COUNT,
            "created_at": TIME,
        }
    ),
    "QueueList": envelope_of("QueueEntry"),
    "RetryResult": obj({"retried": COUNT}),
    "PurgeResult": obj({"queue": STR, "removed": COUNT, "skipped": COUNT}),
    "Webhook": obj(
        {
            "id": ID,
            "url": STR,
            "events": array(STR),
            "description": STR,
            "user_id": nullable(ID),
            "enabled": BOOL,
            "created_at": TIME,
            "last_success_at": nullable(TIME),
            "last_failure_at": nullable(TIME),
            "failure_count": COUNT,
            "secret": {"type": "string", "description": "Only in the creation response."},
        },
        optional=("secret",),
    ),
    "WebhookList": envelope_of("Webhook"),
    "DeletedWebhook": obj({"deleted": BOOL, "id": ID}),
    "Delivery": obj(
        {
            "id": ID,
            "event": STR,
            "event_id": STR,
            "status": {
                "type": "string",
                "enum": ["pending", "retrying", "delivered", "failed"],
            },
            "attempts": COUNT,
            "response_status": nullable(INT),
            "last_error": nullable(STR),
            "created_at": TIME,
            "next_attempt_at": TIME,
            "delivered_at": nullable(TIME),
            "attempt_log": array(
                obj(
                    {
                        "attempt": COUNT,
                        "started_at": TIME,
                        "duration_ms": INT,
                        "response_status": nullable(INT),
                        "error": nullable(STR),
                    }
                )
            ),
        }
    ),
    "DeliveryList": envelope_of("Delivery"),
}
