"""API errors: each maps to one HTTP status and one error code of the admin API.

Handlers raise these; the router turns them into
``{"error": {"code", "message", "details", "timestamp", "request_id"}}``.  Messages are
written by us (never exception text from below), so they are safe to show.
"""

from __future__ import annotations

from typing import Any

#: HTTP status -> error code (docs/api.md lists them).
CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error answered to the client with ``status`` and a JSON error body."""

    status = 500

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def code(self) -> str:
        """The error code for this status."""
        return CODES[self.status]


class InvalidRequest(ApiError):
    """400: bad parameters or body."""

    status = 400


class Unauthorized(ApiError):
    """401: no valid API key."""

    status = 401


class Forbidden(ApiError):
    """403: the key lacks the permission."""

    status = 403


class NotFound(ApiError):
    """404: no such resource (or route)."""

    status = 404


class MethodNotAllowed(ApiError):
    """405: the route exists, not with this method."""

    status = 405


class Conflict(ApiError):
    """409: the change conflicts with the current state."""

    status = 409


class PayloadTooLarge(ApiError):
    """413: the request body is over ``http.max_body``."""

    status = 413


class RateLimited(ApiError):
    """429: past the rate limit."""

    status = 429


class ServiceUnavailable(ApiError):
    """503: the database cannot be reached right now."""

    status = 503


def field_error(field: str, message: str, value: Any = None) -> InvalidRequest:
    """A 400 naming the field at fault (and the offending value, shortened)."""
    details: dict[str, Any] = {"field": field}
    if value is not None:
        details["value"] = shorten(value)
    return InvalidRequest(message, details)


def shorten(value: Any, limit: int = 100) -> Any:
    """A value safe to echo in an error: scalars as they are, long strings cut."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
