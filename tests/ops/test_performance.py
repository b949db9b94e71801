"""/api/v1/performance/*: stats from live figures, rule-based advice, runtime resizing."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from a3mail.caches import CACHES, LruCache, cached
from a3mail.ops import performance
from a3mail.ops.window import RequestWindow, percentile
from tests.ops.support import OpsTestCase


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WindowTests(TestCase):
    def test_percentiles_average_and_rate(self):
        clock = FakeClock()
        window = RequestWindow(clock, capacity=1000, span=60)
        clock.now += 10
        for ms in range(1, 101):  # 1..100 ms
            window.add(ms / 1000, 200 if ms <= 95 else 500)
        figures = window.figures()
        self.assertEqual(figures.count, 100)
        self.assertEqual(figures.p50_ms, 50)
        self.assertEqual(figures.p95_ms, 95)
        self.assertEqual(figures.p99_ms, 99)
        self.assertEqual(figures.avg_ms, 50.5)
        self.assertEqual(figures.failed, 5)
        self.assertEqual(figures.error_rate, 0.05)
        self.assertEqual(figures.per_second, 10.0)  # 100 requests over the 10 s since start

    def test_old_samples_leave_and_memory_is_bounded(self):
        clock = FakeClock()
        window = RequestWindow(clock, capacity=10, span=60)
        for _ in range(25):
            window.add(0.01, 200)
        self.assertEqual(window.figures().count, 10)
        clock.now += 61
        self.assertEqual(window.figures().count, 0)
        self.assertEqual(percentile([], 0.95), 0.0)


def _stats(**changes: Any) -> dict[str, Any]:
    stats: dict[str, dict[str, Any]] = {
        "connection_pool": {
            "total_connections": 4,
            "active_connections": 1,
            "idle_connections": 3,
            "max_size": 10,
            "requests_waiting": 0,
            "failed_connections": 0,
            "connections_lost": 0,
        },
        "cache_performance": {"caches": {}},
        "request_performance": {
            "requests": 100,
            "window_seconds": 60.0,
            "p95_response_time": 20.0,
            "error_rate": 0.0,
        },
        "database": {"operations": 500, "avg_operation_time": 2.0},
    }
    for section, values in changes.items():
        stats[section] = {**stats[section], **values}
    return stats


class RuleTests(TestCase):
    def test_healthy_figures_give_no_advice(self):
        self.assertEqual(performance.recommendations(_stats(), {"queue_oldest_age": 5.0}), [])

    def test_waiting_for_the_pool_recommends_a_bigger_pool_naming_the_numbers(self):
        stats = _stats(
            connection_pool={
                "active_connections": 10,
                "total_connections": 10,
                "requests_waiting": 3,
            }
        )
        [advice] = performance.recommendations(stats, {})
        self.assertEqual((advice.category, advice.priority), ("connection_pool", "high"))
        self.assertEqual(advice.evidence["requests_waiting"], 3)
        self.assertEqual(advice.evidence["max_size"], 10)
        self.assertIn("10 of at most 10", advice.description)
        self.assertIn("connection_pool_size=20", advice.action)

    def test_slow_and_failing_requests_and_slow_database_and_old_queue(self):
        stats = _stats(
            request_performance={"p95_response_time": 900.0, "error_rate": 0.2},
            database={"avg_operation_time": 80.0},
        )
        advice = performance.recommendations(
            stats, {"queue_oldest_age": 7300.0, "queue_waiting": 4}
        )
        titles = [a.title for a in advice]
        self.assertEqual(
            titles,
            [
                "HTTP requests are slow",
                "Many HTTP requests fail",
                "Store operations are slow",
                "Outbound mail is waiting long",
            ],
        )
        self.assertIn("900 ms", advice[0].description)
        self.assertEqual(advice[1].evidence["error_rate"], 0.2)
        self.assertEqual(advice[3].evidence, {"queue_oldest_age": 7300.0, "queue_waiting": 4})

    def test_too_few_requests_say_nothing(self):
        stats = _stats(request_performance={"requests": 5, "p95_response_time": 900.0})
        self.assertEqual(performance.recommendations(stats, {}), [])


class PerformanceApiTests(OpsTestCase):
    def small_cache(self) -> LruCache[Any]:
        """A registered 4-entry cache missing most lookups."""

        @cached("test_lookups", 4)
        def double(n: int) -> int:
            return n * 2

        self.addCleanup(CACHES.pop, "test_lookups", None)
        for n in range(150):
            double(n % 10)
        cache: LruCache[Any] = double.cache  # type: ignore[attr-defined]
        return cache

    async def test_stats_come_from_the_pool_caches_and_requests(self):
        cache = self.small_cache()
        await self.get("/api/v1/users")
        reply = await self.get("/api/v1/performance/stats")
        self.assertEqual(reply.status, 200, reply.body)
        pool = reply.json["connection_pool"]
        self.assertEqual(pool["max_size"], self.store.db.stats()["pool_max"])
        self.assertGreater(pool["requests_total"], 0)
        caches = reply.json["cache_performance"]["caches"]
        self.assertEqual(caches["test_lookups"]["misses"], cache.misses)
        self.assertEqual(caches["test_lookups"]["max_size"], 4)
        requests = reply.json["request_performance"]
        self.assertEqual(requests["requests"], 1)
        self.assertEqual(requests["error_rate"], 0.0)
        self.assertGreater(reply.json["database"]["operations"], 0)

    async def test_recommendations_name_the_cache_and_its_figures(self):
        cache = self.small_cache()
        reply = await self.get("/api/v1/performance/recommendations")
        self.assertEqual(reply.status, 200, reply.body)
        [advice] = [a for a in reply.json["recommendations"] if a["category"] == "cache"]
        self.assertEqual(advice["evidence"]["cache"], "test_lookups")
        self.assertEqual(advice["evidence"]["max_size"], 4)
        self.assertEqual(advice["evidence"]["hit_rate"], round(cache.hit_rate, 4))
        self.assertIn("cache_size=8 cache=test_lookups", advice["action"])

    async def test_optimize_resizes_the_pool_and_a_cache_and_is_audited(self):
        cache = self.small_cache()
        before = self.store.db.stats()["pool_max"]
        body = {
            "optimizations": [
                {"type": "connection_pool_size", "value": before + 3},
                {"type": "cache_size", "value": 64, "cache": "test_lookups"},
            ]
        }
        reply = await self.call("POST", "/api/v1/performance/optimize", json=body)
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(self.store.db.pool.max_size, before + 3)
        self.assertEqual(cache.maxsize, 64)
        pool_change, cache_change = reply.json["applied"]
        self.assertEqual(pool_change["before"]["max_size"], before)
        self.assertEqual(pool_change["after"]["max_size"], before + 3)
        self.assertEqual((cache_change["before"], cache_change["after"]), (4, 64))
        [entry], _ = await self.store.audit.query(event_type="performance.optimize")
        self.assertEqual(entry.details["applied"], reply.json["applied"])
        self.assertIn(self.key_ids[self.admin], entry.actor)

    async def test_optimize_needs_admin_and_refuses_bad_values_before_changing_anything(self):
        cache = self.small_cache()
        before = self.store.db.pool.max_size
        good = {"type": "cache_size", "value": 64, "cache": "test_lookups"}
        self.assertError(
            await self.call(
                "POST", "/api/v1/performance/optimize", key="writer", json={"optimizations": [good]}
            ),
            403,
            "forbidden",
        )
        for bad, field in [
            ({"type": "connection_pool_size", "value": 5000}, "optimizations[1]"),
            ({"type": "cache_size", "value": 8, "cache": "nope"}, "optimizations[1]"),
            ({"type": "threads", "value": 8}, "optimizations[1].type"),
        ]:
            reply = await self.call(
                "POST", "/api/v1/performance/optimize", json={"optimizations": [good, bad]}
            )
            error = self.assertError(reply, 400, "invalid_request")
            self.assertEqual(error["details"]["field"], field)
        self.assertEqual(cache.maxsize, 4)
        self.assertEqual(self.store.db.pool.max_size, before)
