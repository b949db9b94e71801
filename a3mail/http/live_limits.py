"""The API rate limits in force: the ``[http]`` configuration, overridden live by the limits
stored with ``PUT /api/v1/security/rate-limits`` (table ``security_settings``).

Three categories, each ``{"max_requests": N, "window_seconds": W}`` (N = 0: no limit):

- ``global``: every request to the admin API (``/api/v1``), all callers together (bucket
  ``global``); no configuration key, off unless set through the API;
- ``per_ip``: requests without a valid API key, per client address (``ip:<address>``), on the
  admin and temp-mail APIs; configuration ``http.rate_limit_per_ip`` per
  ``http.rate_limit_window``;
- ``per_user``: requests with a valid API key, per key (``key:<key_id>``, one count across the
  admin and temp-mail APIs); configuration ``http.rate_limit_per_key`` per
  ``http.rate_limit_window``.

A stored category replaces the configuration's values for that category; the others keep
following the configuration (and its reloads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from a3mail.http.request import parse_networks
from a3mail.http.router import Limits
from a3mail.store.security_settings import RATE_LIMITS

CATEGORIES = ("global", "per_ip", "per_user")
MAX_REQUESTS = 1_000_000_000
MAX_WINDOW = 86_400


def configured_limits(http: Any) -> dict[str, dict[str, int]]:
    """The rate limits of an ``[http]`` configuration section, by category."""
    window = max(1, int(http.rate_limit_window))
    return {
        "global": {"max_requests": 0, "window_seconds": window},
        "per_ip": {"max_requests": int(http.rate_limit_per_ip), "window_seconds": window},
        "per_user": {"max_requests": int(http.rate_limit_per_key), "window_seconds": window},
    }


def effective_limits(
    http: Any, stored: Mapping[str, Any] | None
) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """The limits in force by category, and where each comes from (config or database)."""
    limits = configured_limits(http)
    sources = dict.fromkeys(CATEGORIES, "config")
    for category in CATEGORIES:
        value = (stored or {}).get(category)
        parsed = _parse(value)
        if parsed is not None:
            limits[category] = parsed
            sources[category] = "database"
    return limits, sources


def _parse(value: Any) -> dict[str, int] | None:
    """A stored category, if well formed (a bad row is ignored, not fatal)."""
    if not isinstance(value, Mapping):
        return None
    requests, window = value.get("max_requests"), value.get("window_seconds")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (requests, window)):
        return None
    assert isinstance(requests, int) and isinstance(window, int)
    if not (0 <= requests <= MAX_REQUESTS and 1 <= window <= MAX_WINDOW):
        return None
    return {"max_requests": requests, "window_seconds": window}


class LiveLimits:
    """The router's limits callable: configuration plus stored overrides, recomputed only
    when either changed.  *config* returns the current Config; *settings* is the store's
    :class:`~a3mail.store.security_settings.SecuritySettings` (its ``cached`` copy is read)."""

    def __init__(self, config: Callable[[], Any], settings: Any) -> None:
        self.config = config
        self.settings = settings
        self._seen: tuple[Any, Any] = (None, None)
        self._limits = Limits()

    def __call__(self) -> Limits:
        http = self.config().http
        stored = self.settings.cached.get(RATE_LIMITS) if self.settings is not None else None
        if self._seen[0] is not http or self._seen[1] is not stored:
            self._seen = (http, stored)
            limits, _ = effective_limits(http, stored)
            self._limits = Limits(
                per_key=limits["per_user"]["max_requests"],
                per_ip=limits["per_ip"]["max_requests"],
                trusted_proxies=parse_networks(http.trusted_proxies),
                global_limit=limits["global"]["max_requests"],
                global_window=limits["global"]["window_seconds"],
                per_key_window=limits["per_user"]["window_seconds"],
                per_ip_window=limits["per_ip"]["window_seconds"],
            )
        return self._limits
