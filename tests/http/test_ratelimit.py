"""Rate limits: in-memory counting, shared totals through PostgreSQL, and the HTTP side."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import task

from a3mail.http.ratelimit import RateLimiter
from tests.http.support import START, ApiTestCase
from tests.support.store import StoreTestCase


class Failing:
    """Counters whose database is down."""

    async def read(self, window: int, bucket: str) -> int:
        raise ConnectionError("down")

    async def add(self, *args: Any) -> Any:
        raise ConnectionError("down")

    async def prune(self, before: int) -> int:
        raise ConnectionError("down")


class LimiterTests(StoreTestCase):
    async def setUp(self):
        await super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)

    def limiter(self, store: Any = None) -> RateLimiter:
        return RateLimiter((store or self.store).ratelimits, self.clock, window=3600)

    async def test_counts_up_to_the_limit_then_refuses(self):
        limiter = self.limiter()
        decisions = [await limiter.hit("key:a", 3) for _ in range(4)]
        self.assertEqual([d.allowed for d in decisions], [True, True, True, False])
        self.assertEqual([d.remaining for d in decisions], [2, 1, 0, 0])
        window_end = int(START) - int(START) % 3600 + 3600
        self.assertEqual(decisions[0].reset, window_end)
        self.assertEqual(
            decisions[0].headers(),
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "2",
                "X-RateLimit-Reset": str(window_end),
            },
        )
        self.assertTrue((await limiter.hit("key:b", 3)).allowed)  # buckets are separate

    async def test_a_new_window_starts_over(self):
        limiter = self.limiter()
        for _ in range(2):
            await limiter.hit("ip:192.0.2.1", 2)
        self.assertFalse((await limiter.hit("ip:192.0.2.1", 2)).allowed)
        self.clock.advance(3600)
        self.assertTrue((await limiter.hit("ip:192.0.2.1", 2)).allowed)

    async def test_no_database_write_per_request(self):
        limiter = self.limiter()
        for _ in range(50):
            await limiter.hit("key:a", 1000)
        self.assertEqual(await self.sql("SELECT * FROM http_rate_limits"), [])
        await limiter.flush()
        [row] = await self.sql("SELECT bucket, count FROM http_rate_limits")
        self.assertEqual((row["bucket"], row["count"]), ("key:a", 50))
        await limiter.flush()  # nothing new: still 50
        [row] = await self.sql("SELECT count FROM http_rate_limits")
        self.assertEqual(row["count"], 50)

    async def test_two_processes_share_one_limit(self):
        other_store = self.make_store()
        await other_store.open()
        self.addCleanup(other_store.close)
        first, second = self.limiter(), self.limiter(other_store)
        for _ in range(6):
            self.assertTrue((await first.hit("key:a", 10)).allowed)
        await first.flush()
        # The second process reads the shared total when it first sees the bucket.
        results = [(await second.hit("key:a", 10)).allowed for _ in range(5)]
        self.assertEqual(results, [True, True, True, True, False])
        await second.flush()
        self.clock.advance(3)  # the first process's total is now stale: it reads it again
        self.assertFalse((await first.hit("key:a", 10)).allowed)
        [row] = await self.sql("SELECT count FROM http_rate_limits WHERE bucket = 'key:a'")
        self.assertEqual(row["count"], 10)

    async def test_between_flushes_each_process_stops_at_the_limit(self):
        other_store = self.make_store()
        await other_store.open()
        self.addCleanup(other_store.close)
        first, second = self.limiter(), self.limiter(other_store)
        await first.hit("key:a", 10)
        await second.hit("key:a", 10)  # both know the bucket now (total 0 in the database)
        admitted = sum([(await first.hit("key:a", 10)).allowed for _ in range(20)])
        admitted += sum([(await second.hit("key:a", 10)).allowed for _ in range(20)])
        # Each process alone stops at the limit: the overshoot is what the other admitted
        # since the last flush (here, with no flush at all, one limit's worth).
        self.assertEqual(admitted + 2, 20)
        await first.flush()
        await second.flush()
        await first.flush()
        self.assertFalse((await first.hit("key:a", 10)).allowed)
        self.assertFalse((await second.hit("key:a", 10)).allowed)

    async def test_old_windows_are_pruned(self):
        limiter = self.limiter()
        await limiter.hit("key:a", 10)
        await limiter.flush()
        self.clock.advance(2 * 3600)
        await limiter.hit("key:a", 10)
        await limiter.flush()
        rows = await self.sql("SELECT window_start FROM http_rate_limits")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["window_start"], limiter.window_start())

    async def test_database_outage_keeps_counting_in_memory(self):
        limiter = RateLimiter(Failing(), self.clock, window=3600)
        self.assertTrue((await limiter.hit("key:a", 2)).allowed)
        self.assertTrue((await limiter.hit("key:a", 2)).allowed)
        self.assertFalse((await limiter.hit("key:a", 2)).allowed)
        await limiter.flush()
        self.assertEqual(limiter.buckets["key:a"].pending, 2)  # kept for the next flush
        self.flushLoggedErrors()

    async def test_periodic_flush_runs_on_the_clock(self):
        limiter = self.limiter()
        limiter.start()
        await limiter.hit("key:a", 10)
        self.clock.advance(1.0)
        await limiter._flushing
        [row] = await self.sql("SELECT count FROM http_rate_limits")
        self.assertEqual(row["count"], 1)
        await limiter.stop()

    async def test_zero_means_no_limit(self):
        limiter = self.limiter()
        decision = await limiter.hit("key:a", 0)
        self.assertTrue(decision.allowed)
        self.assertEqual(limiter.buckets, {})


class HttpRateLimitTests(ApiTestCase):
    overrides = {"http.rate_limit_per_key": 3, "http.rate_limit_per_ip": 2}

    async def test_headers_and_429_per_key(self):
        replies = [await self.call("GET", "/api/v1/users") for _ in range(4)]
        self.assertEqual([r.status for r in replies], [200, 200, 200, 429])
        self.assertEqual([r.header("x-ratelimit-remaining") for r in replies], ["2", "1", "0", "0"])
        self.assertEqual(replies[0].header("x-ratelimit-limit"), "3")
        error = self.assertError(replies[3], 429, "rate_limited")
        reset = int(replies[3].header("x-ratelimit-reset"))
        self.assertEqual(int(replies[3].header("retry-after")), reset - int(START))
        self.assertEqual(error["details"], {"limit": 3, "reset": reset})
        # Another key has its own budget.
        self.assertEqual((await self.call("GET", "/api/v1/users", key="reader")).status, 200)

    async def test_requests_without_a_valid_key_count_per_address(self):
        statuses = [(await self.call("GET", "/api/v1/users", key=None)).status for _ in range(2)]
        self.assertEqual(statuses, [401, 401])
        reply = await self.call("GET", "/api/v1/users", key="mk_live_guess")
        self.assertError(reply, 429, "rate_limited")
        self.assertEqual((await self.call("GET", "/api/v1/users")).status, 200)

    async def test_limits_follow_the_configuration(self):
        self.config = attrs.evolve(
            self.config, http=attrs.evolve(self.config.http, rate_limit_per_key=0)
        )
        reply = await self.call("GET", "/api/v1/users")
        self.assertIsNone(reply.header("x-ratelimit-limit"))
