"""What every freemail handler shares: the caller, errors, request parsing, JSON shapes.

Field names and formats are freemail's: snake_case columns, ``0``/``1`` for flags, times as
``"2024-01-01 12:00:00"`` (UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import attrs

from a3mail.http.validation import InvalidRequest, parse_json
from a3mail.store.freemail import FreemailMailbox
from a3mail.store.names import normalize_address
from a3mail.store.records import InvalidName, MessageInfo
from a3mail.store.tempmail import is_seen

#: roles as the API names them; a strict admin is an ``admin`` with ``strict`` set
ADMIN, USER, MAILBOX, GUEST = "admin", "user", "mailbox", "guest"
ROOT_NAME = "__root__"
MAX_ADDRESS = 320
MAX_BATCH = 100
_ADDRESS = re.compile(r"[^@\s\"<>(),;:\\\[\]]{1,64}@[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


class FreemailError(Exception):
    """An error answered ``{"error": message}`` with *status* (our own words only)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def forbidden(message: str = "permission denied") -> FreemailError:
    """403."""
    return FreemailError(403, message)


def not_found(what: str = "not found") -> FreemailError:
    """404."""
    return FreemailError(404, what)


def bad_request(message: str) -> FreemailError:
    """400."""
    return FreemailError(400, message)


@attrs.frozen
class Principal:
    """Who is calling.  ``user_id``: the freemail user (None for the configured admin, the
    root token and guests); ``account_id``: the one mailbox of a mailbox login."""

    role: str
    username: str
    strict: bool = False
    user_id: int | None = None
    account_id: int | None = None
    can_send: bool = False
    mailbox_limit: int = 0

    @property
    def sees_all(self) -> bool:
        """Admins see and manage every freemail mailbox."""
        return self.role == ADMIN

    @property
    def viewer(self) -> int | None:
        """The user id whose mailboxes this caller sees (None: all of them, for admins);
        403 for callers that are neither (mailbox logins, guests)."""
        if self.sees_all:
            return None
        if self.user_id is None:
            raise forbidden("this login has no mailbox list")
        return self.user_id


@attrs.frozen
class Reply:
    """A JSON answer with a status and cookies to set (``Set-Cookie`` values)."""

    body: Any
    status: int = 200
    cookies: tuple[str, ...] = ()


@attrs.frozen
class BytesReply:
    """A non-JSON answer (a raw message)."""

    body: bytes
    content_type: str
    filename: str


# -- request parsing ----------------------------------------------------------------------


def json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object; 400 otherwise."""
    body = json_value(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def json_value(request: Any) -> Any:
    """The request body as JSON (empty = ``{}``); 400 if it is not JSON."""
    try:
        return parse_json(request.content.read())
    except InvalidRequest:
        raise bad_request("the body is not valid JSON") from None


def arg(request: Any, name: str) -> str | None:
    """The last value of query parameter *name* as text, or None."""
    values = request.args.get(name.encode(), [])
    if not values:
        return None
    return values[-1].decode("utf-8", "replace").strip()


def int_arg(request: Any, name: str, default: int, *, maximum: int, minimum: int = 0) -> int:
    """An integer query parameter (capped at *maximum*); 400 if it is not a number."""
    text = arg(request, name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise bad_request(f"invalid {name}")
    return max(minimum, min(int(text), maximum))


def bool_arg(request: Any, name: str) -> bool | None:
    """``true``/``1`` or ``false``/``0``; None when absent."""
    text = arg(request, name)
    if text is None or text == "":
        return None
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise bad_request(f"invalid {name}")


def number(value: Any, name: str) -> int:
    """A positive integer id from JSON or a path (``"12"`` or ``12``); 400 otherwise."""
    if isinstance(value, bool):
        raise bad_request(f"invalid {name}")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise bad_request(f"invalid {name}")
    return value


def path_id(text: str) -> int:
    """A numeric id from the path; 404 for anything that cannot be an id."""
    if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0:
        return int(text)
    raise not_found()


def flag(value: Any, name: str) -> bool:
    """A JSON boolean (also 0/1); 400 otherwise."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise bad_request(f"invalid {name}")


def address(value: Any, name: str = "address") -> str:
    """An e-mail address, lower-cased; 400 if it does not look like one."""
    if not isinstance(value, str):
        raise bad_request(f"{name} is required")
    text = value.strip().lower()
    if len(text) > MAX_ADDRESS or not _ADDRESS.fullmatch(text):
        raise bad_request(f"invalid {name}")
    try:
        return normalize_address(text)
    except InvalidName:
        raise bad_request(f"invalid {name}") from None


def address_list(value: Any, name: str = "addresses") -> list[str]:
    """A non-empty JSON list of at most :data:`MAX_BATCH` addresses."""
    if not isinstance(value, list) or not value:
        raise bad_request(f"{name} must be a non-empty list")
    if len(value) > MAX_BATCH:
        raise bad_request(f"at most {MAX_BATCH} {name} at a time")
    return list(dict.fromkeys(address(v, name) for v in value))


def id_list(value: Any, name: str) -> list[int]:
    """A non-empty JSON list of at most :data:`MAX_BATCH` ids."""
    if not isinstance(value, list) or not value:
        raise bad_request(f"{name} must be a non-empty list")
    if len(value) > MAX_BATCH:
        raise bad_request(f"at most {MAX_BATCH} {name} at a time")
    return list(dict.fromkeys(number(v, name) for v in value))


def text_field(body: dict[str, Any], name: str, *, maximum: int, required: bool = False) -> str:
    """A string field of at most *maximum* characters ("" when absent and not required)."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is required")
        return ""
    if not isinstance(value, str) or len(value) > maximum:
        raise bad_request(f"invalid {name}")
    return value


# -- JSON shapes --------------------------------------------------------------------------


def stamp(value: datetime | None) -> str | None:
    """``"2024-01-01 12:00:00"`` (UTC), freemail's time format."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def millis(value: datetime | None) -> int | None:
    """Milliseconds since the epoch, or None."""
    return None if value is None else int(value.timestamp() * 1000)


def mailbox_json(box: FreemailMailbox) -> dict[str, Any]:
    """One mailbox as ``GET /api/mailboxes`` lists it."""
    return {
        "id": box.account_id,
        "address": box.address,
        "created_at": stamp(box.created_at),
        "is_pinned": int(box.is_pinned),
        "password_is_default": int(box.password_hash is None),
        "can_login": int(box.can_login),
        "forward_to": box.forward_to,
        "is_favorite": int(box.is_favorite),
        "expires_at": stamp(box.expires_at),
    }


def email_summary_json(info: MessageInfo, sender: str) -> dict[str, Any]:
    """One message as ``GET /api/emails`` lists it."""
    return {
        "id": info.id,
        "sender": sender or info.from_addr,
        "subject": info.subject,
        "received_at": stamp(info.internal_date),
        "is_read": int(is_seen(info)),
        "preview": info.preview,
        "verification_code": info.verification_code,
    }


def email_meta_json(info: MessageInfo, sender: str) -> dict[str, Any]:
    """One message as ``GET /api/emails/batch`` returns it (``r2_*`` name the stored file)."""
    return {
        "id": info.id,
        "sender": sender or info.from_addr,
        "to_addrs": info.to_addr,
        "subject": info.subject,
        "verification_code": info.verification_code,
        "preview": info.preview,
        "r2_bucket": "a3mail",
        "r2_object_key": info.blob_path,
        "received_at": stamp(info.internal_date),
        "is_read": int(is_seen(info)),
    }
