"""Health, metrics and performance routes of the admin API.

Reads need the read permission; writes (custom metrics, optimizations) need admin.
``POST /api/v1/health/check/{component}`` only measures, so it needs read.
"""

from __future__ import annotations

import re
from typing import Any

from klein import Klein

from a3mail.caches import CACHES
from a3mail.http.admin.context import AdminContext
from a3mail.http.auth import ADMIN, READ
from a3mail.http.errors import InvalidRequest, NotFound, ServiceUnavailable, field_error
from a3mail.http.responses import iso
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field
from a3mail.ops.health import COMPONENTS, HealthChecker
from a3mail.ops.performance import (
    OptimizationError,
    apply_optimization,
    check_optimization,
    performance_stats,
    recommendations,
)
from a3mail.ops.system import system_figures
from a3mail.store.custom_metrics import KINDS, CustomSample

METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
MAX_LABELS = 10
MAX_LABEL_VALUE = 200

EMPTY = Body({}, "No body (or an empty JSON object).")
CUSTOM_METRIC = Body(
    {
        "name": Field(
            "string",
            "Prometheus name (letters, digits, _); exported as a3mail_custom_<name>.",
            required=True,
            minimum=1,
            maximum=100,
        ),
        "type": Field("string", "counter (adds value) or gauge (sets it).", enum=KINDS),
        "value": Field("number", "The value (a counter's must be >= 0).", required=True),
        "labels": Field("object", f"Up to {MAX_LABELS} label names -> string values."),
    }
)
OPTIMIZATION = Body(
    {
        "type": Field(
            "string",
            "What to change.",
            required=True,
            enum=("connection_pool_size", "cache_size"),
        ),
        "value": Field("integer", "The new size.", required=True, minimum=1, maximum=1_000_000),
        "cache": Field("string", "cache_size only: one cache (default: every cache).", maximum=100),
    }
)
OPTIMIZE = Body(
    {
        "optimizations": Field(
            "array",
            "Changes, applied in order.",
            required=True,
            minimum=1,
            maximum=10,
            items=Field("object", body=OPTIMIZATION),
        )
    }
)


def runtime_of(ctx: AdminContext) -> Any:
    """The running server (503 where the API runs without one)."""
    if ctx.runtime is None:
        raise ServiceUnavailable("server facts are not available here")
    return ctx.runtime


class HealthApi:
    """GET /api/v1/health/detailed and POST /api/v1/health/check/{component}."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def _checker(self) -> HealthChecker:
        return HealthChecker(runtime_of(self.ctx), self.ctx.clock)

    @endpoint(app, "GET", "/api/v1/health/detailed", READ)
    async def health_detailed(self, request: Any) -> dict[str, Any]:
        """Every check with its figures, plus process facts and the thresholds."""
        return await self._checker().report(detailed=True)

    @endpoint(app, "POST", "/api/v1/health/check/<component>", READ)
    async def health_check(self, request: Any, component: str) -> dict[str, Any]:
        """Run one check now."""
        if component not in COMPONENTS:
            raise NotFound(
                f"no such component: {component[:100]}", {"components": list(COMPONENTS)}
            )
        self.ctx.body(request, EMPTY)
        check = await self._checker().run(component)
        return {"component": component, "timestamp": iso(self.ctx.now()), **check.as_json()}


class MetricsApi:
    """System and application figures, and custom metrics."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "GET", "/api/v1/metrics/system", READ)
    async def system_metrics(self, request: Any) -> dict[str, Any]:
        """CPU, memory, disk, network, load average, connections, uptime (psutil)."""
        runtime = runtime_of(self.ctx)
        return system_figures(runtime.config.data_dir, runtime.uptime)

    @endpoint(app, "GET", "/api/v1/metrics/application", READ)
    async def application_metrics(self, request: Any) -> dict[str, Any]:
        """Request totals and latency, sessions, queue sizes, cache hit rates."""
        runtime = runtime_of(self.ctx)
        metrics = runtime.metrics
        statuses = http_status_totals(metrics)
        window = metrics.window.figures()
        backlog = await self.ctx.store.queue_admin.backlog()
        return {
            "timestamp": iso(self.ctx.now()),
            "total_requests": sum(statuses.values()),
            "successful_requests": sum(n for s, n in statuses.items() if s < 400),
            "client_errors": sum(n for s, n in statuses.items() if 400 <= s < 500),
            "failed_requests": sum(n for s, n in statuses.items() if s >= 500),
            "avg_response_time": window.avg_ms,
            "p95_response_time": window.p95_ms,
            "p99_response_time": window.p99_ms,
            "requests_per_second": window.per_second,
            "window_seconds": window.span,
            "active_sessions": metrics.active_sessions(),
            "sessions_by_protocol": dict(sorted(metrics.active.items())),
            "queue_sizes": dict(backlog.queues),
            "cache_hit_rates": {n: round(c.hit_rate, 4) for n, c in sorted(CACHES.items())},
        }

    @endpoint(app, "POST", "/api/v1/metrics/custom", ADMIN)
    async def set_custom_metric(self, request: Any) -> dict[str, Any]:
        """Add to a custom counter or set a custom gauge (stored; exported in /metrics)."""
        body = self.ctx.body(request, CUSTOM_METRIC)
        name, kind, value = body["name"], body.get("type", "gauge"), float(body["value"])
        if not METRIC_NAME.match(name):
            raise field_error("name", "name must be letters, digits and _ (not first a digit)")
        if kind == "counter" and value < 0:
            raise field_error("value", "a counter's value must be >= 0", value)
        labels = check_labels(body.get("labels") or {})
        sample = await self.ctx.store.custom_metrics.post(name, kind, value, labels)
        await self.ctx.audit(request, "metrics.custom", name, {"type": kind, "value": value})
        return custom_json(name, [sample])

    @endpoint(app, "GET", "/api/v1/metrics/custom/<metric_name>", READ)
    async def get_custom_metric(self, request: Any, metric_name: str) -> dict[str, Any]:
        """Every label set of one custom metric."""
        if not METRIC_NAME.match(metric_name):
            raise NotFound(f"no such custom metric: {metric_name[:100]}")
        samples = await self.ctx.store.custom_metrics.get(metric_name)
        return custom_json(metric_name, samples)


class PerformanceApi:
    """Performance figures, recommendations and runtime tuning."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def _stats(self) -> dict[str, Any]:
        runtime = runtime_of(self.ctx)
        return performance_stats(runtime.metrics, self.ctx.store.db.stats())

    @endpoint(app, "GET", "/api/v1/performance/stats", READ)
    async def performance_stats(self, request: Any) -> dict[str, Any]:
        """Pool, caches, request latency percentiles, throughput, error rate."""
        return {"timestamp": iso(self.ctx.now()), **self._stats()}

    @endpoint(app, "GET", "/api/v1/performance/recommendations", READ)
    async def performance_recommendations(self, request: Any) -> dict[str, Any]:
        """Advice from rules over the measured figures, each with its evidence."""
        stats = self._stats()
        backlog = await self.ctx.store.queue_admin.backlog()
        context = {
            "queue_oldest_age": backlog.oldest_age,
            "queue_waiting": backlog.queues.get("outgoing", 0) + backlog.queues.get("retry", 0),
        }
        advice = recommendations(stats, context)
        return {
            "timestamp": iso(self.ctx.now()),
            "recommendations": [a.as_json() for a in advice],
        }

    @endpoint(app, "POST", "/api/v1/performance/optimize", ADMIN)
    async def optimize(self, request: Any) -> dict[str, Any]:
        """Resize the database pool or caches now (until restart); audited."""
        runtime_of(self.ctx)
        items = self.ctx.body(request, OPTIMIZE)["optimizations"]
        for index, item in enumerate(items):
            try:
                check_optimization(item)
            except OptimizationError as e:
                raise InvalidRequest(str(e), {"field": f"optimizations[{index}]"}) from None
        applied = []
        for item in items:
            applied.extend(await apply_optimization(self.ctx.store, item))
        await self.ctx.audit(request, "performance.optimize", None, {"applied": applied})
        return {"status": "applied", "applied": applied}


def check_labels(labels: dict[str, Any]) -> dict[str, str]:
    """Label names and values of a custom metric, or a 400 naming the label."""
    if len(labels) > MAX_LABELS:
        raise field_error("labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not LABEL_NAME.match(key) or key.startswith("__"):
            raise field_error(f"labels.{key[:50]}", "label names are letters, digits and _")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE or "\x00" in value:
            raise field_error(
                f"labels.{key}", f"label values are strings of at most {MAX_LABEL_VALUE} chars"
            )
    return dict(labels)


def custom_json(name: str, samples: list[CustomSample]) -> dict[str, Any]:
    """A custom metric and its series as JSON."""
    return {
        "name": name,
        "type": samples[0].kind,
        "exported_as": f"a3mail_custom_{name}",
        "series": [
            {"labels": s.labels, "value": s.value, "updated_at": iso(s.updated_at)} for s in samples
        ],
    }


def http_status_totals(metrics: Any) -> dict[int, int]:
    """Requests answered since start, by status."""
    totals: dict[int, int] = {}
    for family in metrics.http_requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                status = int(sample.labels["status"])
                totals[status] = totals.get(status, 0) + int(sample.value)
    return totals
