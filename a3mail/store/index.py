"""Index columns of a message, taken from the parse made once at delivery.

The store does not import the MIME parser: callers hand it the JSON form of the parse
(``a3mail.mime.ParsedMessage.to_json()``), and this module picks the columns out of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Fields of the parse kept in their own columns rather than in ``messages.parsed``.
_OWN_COLUMNS = ("text", "html")
_MAX_COLUMN_TEXT = 1_000_000


def _addresses(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    return [a for a in value if isinstance(a, dict)]


def _display(addresses: list[dict[str, str]]) -> str:
    parts = []
    for a in addresses:
        name, address = (a.get("name") or "").strip(), (a.get("address") or "").strip()
        parts.append(f"{name} <{address}>" if name and address else address or name)
    return ", ".join(p for p in parts if p)


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(value: Any, limit: int = _MAX_COLUMN_TEXT) -> str:
    # PostgreSQL text cannot hold NUL characters.
    return value[:limit].replace("\x00", "") if isinstance(value, str) else ""


def _strip_nul(value: Any) -> Any:
    """PostgreSQL jsonb cannot hold NUL characters: drop them everywhere."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    return value


def index_values(parsed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``messages`` columns for a parse (empty defaults when there is none)."""
    p = dict(parsed or {})
    attachments = p.get("attachments") if isinstance(p.get("attachments"), list) else []
    code = p.get("verification_code")
    message_id = p.get("message_id")
    stored = {k: v for k, v in p.items() if k not in _OWN_COLUMNS}
    return {
        "header_size": int(p.get("header_size") or 0),
        "sent_date": _date(p.get("date")),
        "subject": _text(p.get("subject"), 10_000),
        "from_addr": _text(_display(_addresses(p.get("from"))), 10_000),
        "to_addr": _text(_display(_addresses(p.get("to"))), 10_000),
        "message_id": _text(message_id, 1000) if isinstance(message_id, str) else None,
        "has_attachments": bool(attachments),
        "verification_code": _text(code, 64) if isinstance(code, str) and code else None,
        "preview": _text(p.get("preview"), 1000),
        "parsed": json.dumps(_strip_nul(stored), ensure_ascii=False),
        "body_text": _text(p.get("text")),
        "body_html": _text(p.get("html")),
    }


INDEX_COLUMNS = tuple(index_values(None))
