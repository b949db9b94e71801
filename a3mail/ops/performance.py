"""Performance figures, recommendations drawn from them, and runtime tuning.

:func:`performance_stats` reads the database pool (psycopg_pool ``get_stats``), the caches
(:mod:`a3mail.caches`) and the request window (:mod:`a3mail.ops.window`).
:func:`recommendations` applies the rules of :data:`RULES` to those figures; each
recommendation carries the figures that triggered it (``evidence``).
:func:`apply_optimization` resizes the pool or a cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from a3mail.caches import CACHES, MAX_CACHE_SIZE
from a3mail.ops.metrics import Metrics

#: The pool's largest allowed size through the API.
MAX_POOL_SIZE = 200
#: Rules look at request figures only with at least this many requests in the window.
MIN_REQUESTS = 20
#: Rules look at a cache only after this many lookups.
MIN_LOOKUPS = 100
SLOW_P95_MS = 500.0
HIGH_ERROR_RATE = 0.05
LOW_HIT_RATE = 0.8
SLOW_DB_MS = 50.0
OLD_QUEUE_SECONDS = 3600.0
POOL_BUSY = 0.9


def pool_figures(stats: dict[str, int]) -> dict[str, Any]:
    """The ``connection_pool`` section from psycopg_pool's ``get_stats()``."""
    size = stats.get("pool_size", 0)
    available = stats.get("pool_available", 0)
    made = stats.get("connections_num", 0)
    requests = stats.get("requests_num", 0)
    return {
        "total_connections": size,
        "active_connections": max(0, size - available),
        "idle_connections": available,
        "min_size": stats.get("pool_min", 0),
        "max_size": stats.get("pool_max", 0),
        "requests_waiting": stats.get("requests_waiting", 0),
        "failed_connections": stats.get("connections_errors", 0),
        "connections_lost": stats.get("connections_lost", 0),
        "avg_connection_time": round(stats.get("connections_ms", 0) / made, 3) if made else 0.0,
        "connection_reuse_rate": round(max(0.0, 1 - made / requests), 4) if requests else 0.0,
        "requests_total": requests,
    }


def cache_figures() -> dict[str, Any]:
    """The ``cache_performance`` section: totals over every cache, and each cache."""
    caches = {name: cache.snapshot() for name, cache in sorted(CACHES.items())}
    hits = sum(c["hits"] for c in caches.values())
    misses = sum(c["misses"] for c in caches.values())
    evictions = sum(c["evictions"] for c in caches.values())
    entries = sum(c["size"] for c in caches.values())
    capacity = sum(c["max_size"] for c in caches.values())
    lookups = hits + misses
    return {
        "hit_rate": round(hits / lookups, 4) if lookups else 0.0,
        "miss_rate": round(misses / lookups, 4) if lookups else 0.0,
        "eviction_rate": round(evictions / lookups, 4) if lookups else 0.0,
        "lookups": lookups,
        "cache_size": entries,
        "cache_capacity": capacity,
        "cache_utilization": round(entries / capacity, 4) if capacity else 0.0,
        "caches": caches,
    }


def request_figures(metrics: Metrics) -> dict[str, Any]:
    """The ``request_performance`` section from the request window."""
    w = metrics.window.figures()
    return {
        "requests": w.count,
        "window_seconds": w.span,
        "avg_response_time": w.avg_ms,
        "p50_response_time": w.p50_ms,
        "p95_response_time": w.p95_ms,
        "p99_response_time": w.p99_ms,
        "throughput": w.per_second,
        "error_rate": round(w.error_rate, 4),
    }


def database_figures(metrics: Metrics) -> dict[str, Any]:
    """Average time a store operation held a connection, over the process's life."""
    total = count = 0.0
    for family in metrics.db_latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
    return {
        "operations": int(count),
        "avg_operation_time": round(total / count * 1000, 3) if count else 0.0,
    }


def performance_stats(metrics: Metrics, pool_stats: dict[str, int]) -> dict[str, Any]:
    """Every performance figure."""
    return {
        "connection_pool": pool_figures(pool_stats),
        "cache_performance": cache_figures(),
        "request_performance": request_figures(metrics),
        "database": database_figures(metrics),
    }


@attrs.frozen
class Recommendation:
    """One piece of advice and the figures behind it."""

    category: str
    priority: str  # high | medium | low
    title: str
    description: str
    impact: str
    action: str
    evidence: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The JSON form."""
        return attrs.asdict(self)


Rule = Callable[[dict[str, Any], dict[str, Any]], Iterator[Recommendation]]


def _pool_rule(stats: dict[str, Any], context: dict[str, Any]) -> Iterator[Recommendation]:
    pool = stats["connection_pool"]
    size, most = pool["total_connections"], pool["max_size"]
    busy = pool["active_connections"] / most if most else 0.0
    if pool["requests_waiting"] > 0 or (most and busy >= POOL_BUSY):
        target = min(MAX_POOL_SIZE, max(most * 2, most + 5))
        yield Recommendation(
            "connection_pool",
            "high" if pool["requests_waiting"] > 0 else "medium",
            "Enlarge the database pool",
            f"{pool['active_connections']} of at most {most} connections are in use"
            f" ({busy:.0%}) and {pool['requests_waiting']} requests wait for one",
            "Store operations stop queueing for a connection",
            f"POST /api/v1/performance/optimize connection_pool_size={target}"
            f" (and database.pool_max in the configuration)",
            {
                "active_connections": pool["active_connections"],
                "total_connections": size,
                "max_size": most,
                "requests_waiting": pool["requests_waiting"],
            },
        )
    if pool["failed_connections"] > 0:
        yield Recommendation(
            "connection_pool",
            "high",
            "Database connections are failing",
            f"{pool['failed_connections']} connection attempts failed and"
            f" {pool['connections_lost']} connections were lost since start",
            "Fewer temporary failures answered to clients",
            "Check the PostgreSQL server, its max_connections and the network to it",
            {
                "failed_connections": pool["failed_connections"],
                "connections_lost": pool["connections_lost"],
            },
        )


def _cache_rule(stats: dict[str, Any], context: dict[str, Any]) -> Iterator[Recommendation]:
    for name, cache in stats["cache_performance"]["caches"].items():
        lookups = cache["hits"] + cache["misses"]
        full = cache["size"] >= cache["max_size"]
        if lookups >= MIN_LOOKUPS and cache["hit_rate"] < LOW_HIT_RATE and full:
            target = min(MAX_CACHE_SIZE, cache["max_size"] * 2)
            yield Recommendation(
                "cache",
                "medium",
                f"Enlarge the {name} cache",
                f"The {name} cache is full ({cache['size']}/{cache['max_size']} entries)"
                f" and hits only {cache['hit_rate']:.0%} of {lookups} lookups"
                f" ({cache['evictions']} evictions)",
                "More lookups answered from memory",
                f"POST /api/v1/performance/optimize cache_size={target} cache={name}",
                {
                    "cache": name,
                    "hit_rate": cache["hit_rate"],
                    "lookups": lookups,
                    "size": cache["size"],
                    "max_size": cache["max_size"],
                    "evictions": cache["evictions"],
                },
            )


def _request_rule(stats: dict[str, Any], context: dict[str, Any]) -> Iterator[Recommendation]:
    requests = stats["request_performance"]
    if requests["requests"] < MIN_REQUESTS:
        return
    evidence = {
        "requests": requests["requests"],
        "window_seconds": requests["window_seconds"],
        "p95_response_time": requests["p95_response_time"],
        "error_rate": requests["error_rate"],
    }
    if requests["p95_response_time"] > SLOW_P95_MS:
        yield Recommendation(
            "requests",
            "high",
            "HTTP requests are slow",
            f"95% of the last {requests['requests']} requests took up to"
            f" {requests['p95_response_time']:.0f} ms (over {SLOW_P95_MS:.0f} ms)",
            "Faster API answers",
            "Look at the slowest routes in a3mail_http_request_duration_seconds; check the"
            " database latency and pool",
            evidence,
        )
    if requests["error_rate"] > HIGH_ERROR_RATE:
        yield Recommendation(
            "requests",
            "high",
            "Many HTTP requests fail",
            f"{requests['error_rate']:.1%} of the last {requests['requests']} requests"
            f" were answered with a 5xx status (over {HIGH_ERROR_RATE:.0%})",
            "Fewer failed API calls",
            "Read the log lines with those request ids; check /health",
            evidence,
        )


def _database_rule(stats: dict[str, Any], context: dict[str, Any]) -> Iterator[Recommendation]:
    database = stats["database"]
    if database["operations"] >= MIN_LOOKUPS and database["avg_operation_time"] > SLOW_DB_MS:
        yield Recommendation(
            "database",
            "medium",
            "Store operations are slow",
            f"Store operations held a connection for {database['avg_operation_time']:.1f} ms"
            f" on average over {database['operations']} operations (over {SLOW_DB_MS:.0f} ms)",
            "Lower latency on every protocol",
            "Check PostgreSQL's load, its slow-query log and the network latency to it",
            dict(database),
        )


def _queue_rule(stats: dict[str, Any], context: dict[str, Any]) -> Iterator[Recommendation]:
    age = context.get("queue_oldest_age")
    if age is not None and age > OLD_QUEUE_SECONDS:
        yield Recommendation(
            "queue",
            "medium",
            "Outbound mail is waiting long",
            f"The oldest waiting outbound entry is {age / 3600:.1f} h old"
            f" (over {OLD_QUEUE_SECONDS / 3600:.0f} h); {context.get('queue_waiting', 0)}"
            " entries wait",
            "Mail reaches its recipients sooner",
            "GET /api/v1/queue?queue=retry to see the errors; raise outbound.concurrency if"
            " the remote servers answer",
            {"queue_oldest_age": round(age, 1), "queue_waiting": context.get("queue_waiting", 0)},
        )


RULES: tuple[Rule, ...] = (_pool_rule, _cache_rule, _request_rule, _database_rule, _queue_rule)


def recommendations(stats: dict[str, Any], context: dict[str, Any]) -> list[Recommendation]:
    """Every rule's advice over *stats* (see :func:`performance_stats`) and *context*
    (``queue_oldest_age``, ``queue_waiting``)."""
    return [advice for rule in RULES for advice in rule(stats, context)]


class OptimizationError(ValueError):
    """An optimization that cannot be applied (the message names the field)."""


def check_optimization(item: dict[str, Any]) -> None:
    """Refuse an unknown cache or an out-of-range size before anything changes."""
    value = item["value"]
    if item["type"] == "connection_pool_size":
        if not 1 <= value <= MAX_POOL_SIZE:
            raise OptimizationError(f"connection_pool_size must be 1..{MAX_POOL_SIZE}")
        return
    name = item.get("cache")
    if name is not None and name not in CACHES:
        raise OptimizationError(f"no such cache: {name}")
    if not 1 <= value <= MAX_CACHE_SIZE:
        raise OptimizationError(f"cache_size must be 1..{MAX_CACHE_SIZE}")


async def apply_optimization(store: Any, item: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply one checked optimization; returns what changed (before and after)."""
    value = item["value"]
    if item["type"] == "connection_pool_size":
        stats = store.db.stats()
        before = {"min_size": stats.get("pool_min", 0), "max_size": stats.get("pool_max", 0)}
        min_size, max_size = await store.resize_pool(value)
        after = {"min_size": min_size, "max_size": max_size}
        return [{"type": "connection_pool_size", "before": before, "after": after}]
    names = [item["cache"]] if item.get("cache") else sorted(CACHES)
    changes = []
    for name in names:
        cache = CACHES[name]
        before_size = cache.maxsize
        cache.resize(value)
        changes.append(
            {"type": "cache_size", "cache": name, "before": before_size, "after": cache.maxsize}
        )
    return changes
