"""Server facts and control: GET /api/v1/server/info, POST /api/v1/server/reload and
/restart (a3mail.control), GET /api/v1/stats."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from klein import Klein

import a3mail
from a3mail.control import Control, ReloadError
from a3mail.http.admin.context import AdminContext
from a3mail.http.auth import ADMIN, READ
from a3mail.http.errors import InvalidRequest, ServiceUnavailable
from a3mail.http.responses import JsonResponse, iso_from_epoch
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body

# Listener name -> the feature it provides.
_FEATURES = {"submission": "smtp", "submissions": "smtp", "imaps": "imap", "pop3s": "pop3"}
EMPTY = Body({}, "No body (or an empty JSON object).")


def build_date() -> str:
    """When this a3mail was installed or built: the modification time of its package."""
    return iso_from_epoch(os.path.getmtime(a3mail.__file__))


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

    def _control(self) -> Control:
        runtime = self._runtime()
        if runtime.control is None:  # a runtime without its service (tests, embedding)
            runtime.control = Control(runtime)
        return runtime.control  # type: ignore[no-any-return]

    @endpoint(app, "POST", "/api/v1/server/reload", ADMIN)
    async def reload(self, request: Any) -> dict[str, Any]:
        """Re-read the configuration file and the TLS certificate; report what changed."""
        control = self._control()
        self.ctx.body(request, EMPTY)
        source = _show(control.runtime.config.source)
        try:
            report = await control.reload()
        except ReloadError as e:
            raise InvalidRequest(str(e), {"source": source}) from None
        await self.ctx.audit(request, "server.reload", source, {"changed": report.changed})
        return report.as_dict()

    @endpoint(app, "POST", "/api/v1/server/restart", ADMIN)
    async def restart(self, request: Any) -> JsonResponse:
        """Answer 202, drain the sessions, then start the same command line again."""
        control = self._control()
        self.ctx.body(request, EMPTY)
        config = control.runtime.config
        await self.ctx.audit(request, "server.restart", _show(config.source), {})
        control.restart()
        return JsonResponse(
            {
                "status": "restarting",
                "drain_timeout": config.server.drain_timeout,
                "mode": config.server.restart,
            },
            202,
        )

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
            "sessions_active": runtime.metrics.active_sessions(),
            "messages_total": totals.messages_total,
            "messages_today": totals.messages_today,
            "storage_used": totals.storage_used,
            "imap": runtime.metrics.protocol_figures("imap"),
            "pop3": runtime.metrics.protocol_figures("pop3"),
        }
        if smtp is not None:
            result["smtp"] = smtp
        return result


def _show(source: Path | None) -> str | None:
    return None if source is None else str(source)
