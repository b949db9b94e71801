"""The ``ops`` surface of the http listener: ``/health``, ``/ready`` and ``/metrics``.

No API key is needed (load balancers and Prometheus call them), and no rate limit or
database lookup stands in front: ``/ready`` must answer 503 quickly when PostgreSQL is down.
Only GET and HEAD are served; every answer is JSON except ``/metrics`` (Prometheus text).
The admin routes about health, metrics and performance live in the admin surface
(:mod:`a3mail.http.admin.monitoring`).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from a3mail.http.responses import dumps, iso_from_epoch
from a3mail.http.surfaces import Surface
from a3mail.logs import get_logger
from a3mail.ops.health import HealthChecker
from a3mail.ops.metrics import CONTENT_TYPE

log = get_logger(__name__)

PATHS = ("/health", "/ready", "/metrics")
#: Seconds /metrics waits for the database figures before answering without them.
REFRESH_TIMEOUT = 3.0


class OpsResource(Resource):
    """Answers /health, /ready and /metrics."""

    isLeaf = True

    def __init__(self, runtime: Any, clock: Any) -> None:
        super().__init__()
        self.runtime = runtime
        self.clock = clock
        self.health = HealthChecker(runtime, clock)

    def render(self, request: Any) -> Any:
        """Answer asynchronously."""
        started = self.clock.seconds()
        d = Deferred.fromCoroutine(self._answer(request))
        d.addErrback(self._failed, request)
        d.addCallback(self._write, request, started)
        d.addErrback(lambda f: log.failure("ops: writing the response", f))
        return NOT_DONE_YET

    async def _answer(self, request: Any) -> tuple[str, int, str, bytes]:
        path = request.path.decode("latin-1").rstrip("/") or "/"
        if path not in PATHS:
            return "unmatched", 404, "application/json", _error(404, "no such endpoint", self.now())
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return path, 405, "application/json", _error(405, "use GET", self.now())
        if path == "/health":
            body = await self.health.report()
            status = 503 if body["status"] == "unhealthy" else 200
            return path, status, "application/json", dumps(body)
        if path == "/ready":
            ready, body = await self.health.readiness()
            return path, 200 if ready else 503, "application/json", dumps(body)
        refresh = Deferred.fromCoroutine(self.runtime.metrics.refresh(self.runtime.store))
        refresh.addTimeout(REFRESH_TIMEOUT, self.clock)
        try:
            await refresh
        except Exception:
            log.warn("ops: /metrics answered without the database figures (timeout)")
        return path, 200, CONTENT_TYPE, self.runtime.metrics.exposition()

    def now(self) -> float:
        """Now, by the surface's clock."""
        return float(self.clock.seconds())

    def _failed(self, failure: Any, request: Any) -> tuple[str, int, str, bytes]:
        log.failure("ops: {path} failed", failure, path=request.path.decode("latin-1")[:100])
        return (
            "unmatched",
            500,
            "application/json",
            _error(500, "internal server error", self.now()),
        )

    def _write(self, answer: tuple[str, int, str, bytes], request: Any, started: float) -> None:
        route, status, content_type, body = answer
        method = request.method.decode("latin-1")
        self.runtime.metrics.http_request(route, method, status, self.clock.seconds() - started)
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", content_type.encode())
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", str(len(body)).encode())
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def _error(status: int, message: str, now: float) -> bytes:
    codes = {404: "not_found", 405: "method_not_allowed", 500: "internal_error"}
    return dumps(
        {"error": {"code": codes[status], "message": message, "timestamp": iso_from_epoch(now)}}
    )


def build_surface(runtime: Any, clock: Any) -> Surface:
    """The ops surface of the ``http`` listener."""
    return Surface("ops", PATHS, OpsResource(runtime, clock))
