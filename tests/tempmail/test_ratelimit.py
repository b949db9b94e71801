"""The temp-mail surface counts requests like the admin API: per key, else per address."""

from __future__ import annotations

from tests.tempmail.support import TempmailTestCase


class RateLimitTests(TempmailTestCase):
    overrides = {"http": {"rate_limit_per_key": 3, "rate_limit_per_ip": 2}}

    async def test_per_key_limit_then_429(self):
        for remaining in ("2", "1", "0"):
            reply = await self.call("GET", "/api/config")
            self.assertEqual(reply.status, 200)
            self.assertEqual(reply.header("x-ratelimit-remaining"), remaining)
        reply = await self.call("GET", "/v1/config")
        self.assertEqual(reply.status, 429)
        self.assertEqual(reply.json["code"], 429)
        self.assertIsNotNone(reply.header("retry-after"))
        self.assertEqual((await self.call("GET", "/api/config", key="bob")).status, 200)

    async def test_bad_keys_count_against_the_address(self):
        for _ in range(2):
            self.assertApiError(await self.call("GET", "/api/config", key="mk_live_x"), 401)
        self.assertApiError(await self.call("GET", "/api/config", key=None), 429)

    async def test_the_window_resets_on_the_clock(self):
        for _ in range(3):
            await self.call("GET", "/api/config")
        self.assertApiError(await self.call("GET", "/api/config"), 429)
        self.clock.advance(self.config.http.rate_limit_window)
        self.assertEqual((await self.call("GET", "/api/config")).status, 200)
