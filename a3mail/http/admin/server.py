"""Server facts: GET /api/v1/server/info, POST /api/v1/server/reload, GET /api/v1/stats."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from klein import Klein

import a3mail
from a3mail.config import ConfigError, load_config
from a3mail.http.admin.context import AdminContext, in_thread
from a3mail.http.auth import ADMIN, READ
from a3mail.http.errors import InvalidRequest, ServiceUnavailable
from a3mail.http.responses import iso_from_epoch
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body
from a3mail.logs import set_level
from a3mail.tls import TLSConfigError, ensure_self_signed

# Listener name -> the feature it provides.
_FEATURES = {"submission": "smtp", "submissions": "smtp", "imaps": "imap", "pop3s": "pop3"}
# Configuration keys (dotted prefixes) that a running server reads at each use, so that a
# reload applies them.  Every other key is read when a listener or service starts (the SMTP
# and POP3 listeners build their settings then): it needs a restart.
LIVE_KEYS = (
    "tls.",
    "logging.level",
    "http.max_body",
    "http.rate_limit_per_key",
    "http.rate_limit_per_ip",
    "http.trusted_proxies",
    "webhooks.allow_private_targets",
)
EMPTY = Body({}, "No body (or an empty JSON object).")


def build_date() -> str:
    """When this a3mail was installed or built: the modification time of its package."""
    return iso_from_epoch(os.path.getmtime(a3mail.__file__))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A config record as ``{"section.key": value}``."""
    if attrs.has(type(value)):
        value = {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            name = f"{prefix}{key}"
            if attrs.has(type(item)) or (isinstance(item, Mapping) and prefix == ""):
                flat.update(flatten(item, f"{name}."))
            else:
                flat[name] = dict(item) if isinstance(item, Mapping) else item
        return flat
    return {prefix.rstrip("."): value}


def changed_keys(old: Any, new: Any) -> list[str]:
    """The dotted keys whose values differ between two configurations."""
    before, after = flatten(old), flatten(new)
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def smtp_counters() -> dict[str, int] | None:
    """The SMTP listeners' counters of this process, if the SMTP front is installed."""
    try:
        stats = importlib.import_module("a3mail.smtp.stats").STATS.snapshot()
    except ImportError:
        return None
    counters = {
        "received": int(stats.get("messages_accepted", 0)),
        "rejected": int(sum(dict(stats.get("messages_rejected", {})).values())),
        "connections": int(stats.get("connections", 0)),
        "connections_active": int(stats.get("connections_open", 0)),
    }
    if "messages_sent" in stats:
        counters["sent"] = int(stats["messages_sent"])
    return counters


class ServerApi:
    """Facts about the running server, its statistics, and configuration reload."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def _runtime(self) -> Any:
        if self.ctx.runtime is None:
            raise ServiceUnavailable("server facts are not available here")
        return self.ctx.runtime

    @endpoint(app, "GET", "/api/v1/server/info", READ)
    async def server_info(self, request: Any) -> dict[str, Any]:
        """Version, build date, uptime, host name, features (configured listeners)."""
        runtime = self._runtime()
        listeners = dict(runtime.config.listeners)
        return {
            "version": a3mail.__version__,
            "build_date": build_date(),
            "uptime": max(0, int(runtime.uptime)),
            "started_at": iso_from_epoch(runtime.started_at),
            "hostname": runtime.config.hostname,
            "features": sorted({_FEATURES.get(name, name) for name in listeners}),
            "listeners": listeners,
            "status": "running",
        }

    @endpoint(app, "POST", "/api/v1/server/reload", ADMIN)
    async def reload(self, request: Any) -> dict[str, Any]:
        """Re-read the configuration file and the TLS certificate; report what changed."""
        runtime = self._runtime()
        self.ctx.body(request, EMPTY)
        old = runtime.config
        try:
            new = load_config(old.source, data_dir=old.data_dir)
        except ConfigError as e:
            raise InvalidRequest(str(e), {"source": _show(old.source)}) from None
        try:
            await in_thread(_reload_tls, runtime.tls, new)
        except TLSConfigError as e:
            raise InvalidRequest(str(e), {"source": _show(old.source)}) from None
        changed = changed_keys(old, new)
        restart = [k for k in changed if not k.startswith(LIVE_KEYS)]
        runtime.config = new
        set_level(new.logging.level)
        await self.ctx.audit(request, "server.reload", _show(old.source), {"changed": changed})
        return {
            "status": "reloaded",
            "source": _show(old.source),
            "changed": changed,
            "applied": [k for k in changed if k not in restart],
            "restart_required": restart,
            "tls": {"certificate": str(runtime.tls.certificate), "reloaded": True},
        }

    @endpoint(app, "GET", "/api/v1/stats", READ)
    async def stats(self, request: Any) -> dict[str, Any]:
        """Server statistics from the store and this process's counters."""
        runtime = self._runtime()
        totals = await self.ctx.store.stats.server(self.ctx.today())
        smtp = smtp_counters()
        result: dict[str, Any] = {
            "uptime": max(0, int(runtime.uptime)),
            "users_total": totals.users_total,
            "domains_total": totals.domains_total,
            "sessions_active": smtp["connections_active"] if smtp else 0,
            "messages_total": totals.messages_total,
            "messages_today": totals.messages_today,
            "storage_used": totals.storage_used,
            "imap": {"connections": 0, "commands": 0},
        }
        if smtp is not None:
            result["smtp"] = smtp
        return result


def _reload_tls(tls: Any, config: Any) -> None:
    """Point the live TLS object at the new files and load them; restore on failure."""
    old = (tls.certificate, tls.private_key)
    if config.tls.generated:
        ensure_self_signed(config.tls.certificate, config.tls.private_key, config.hostname)
    tls.certificate, tls.private_key = Path(config.tls.certificate), Path(config.tls.private_key)
    try:
        tls.reload()
    except TLSConfigError:
        tls.certificate, tls.private_key = old
        raise


def _show(source: Path | None) -> str | None:
    return None if source is None else str(source)
