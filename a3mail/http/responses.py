"""What handlers return, and how it is written: JSON (with ISO 8601 dates) or a stored file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any

import attrs


def iso(value: datetime | None) -> str | None:
    """A timestamp as ``2025-01-15T10:30:00Z`` (UTC, whole seconds), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_from_epoch(seconds: float) -> str:
    """A POSIX time as an ISO 8601 UTC timestamp."""
    return iso(datetime.fromtimestamp(seconds, UTC)) or ""


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


@attrs.frozen
class JsonResponse:
    """A JSON body with a status (200 unless told) and extra headers.

    The body is encoded when written, unless it is ``bytes``: JSON already encoded.
    """

    body: Any
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class FileResponse:
    """An open file streamed as the body (the writer closes it)."""

    file: IO[bytes]
    size: int
    content_type: str
    headers: dict[str, str] = attrs.field(factory=dict)
