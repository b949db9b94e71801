"""The IP blocklist, security settings and the automatic block, on real PostgreSQL."""

from __future__ import annotations

import ipaddress
import time

from a3mail.store.blocklist import AUTO_BLOCK_EVENT, AutoBlockRule
from a3mail.store.records import NotFound
from tests.store.helpers import aio, wait_for
from tests.support.store import StoreTestCase

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class BlocklistStoreTests(StoreTestCase):
    async def test_block_single_addresses_and_networks_v4_and_v6(self):
        one, created = await self.store.blocklist.block("192.0.2.7", reason="spam", created_by="t")
        self.assertTrue(created)
        self.assertEqual(one.network, "192.0.2.7/32")
        self.assertEqual(one.address, "192.0.2.7")
        self.assertTrue(one.permanent)
        await self.store.blocklist.block("198.51.100.0/24", duration=60)
        await self.store.blocklist.block("2001:db8::/32")
        await self.store.blocklist.block("::ffff:203.0.113.5")  # IPv4-mapped: stored as IPv4
        entries, total = await self.store.blocklist.entries()
        self.assertEqual(total, 4)
        self.assertEqual(
            {e.network for e in entries},
            {"192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32", "203.0.113.5/32"},
        )
        timed = next(e for e in entries if e.network == "198.51.100.0/24")
        self.assertAlmostEqual((timed.expires_at - timed.created_at).total_seconds(), 60, delta=1)
        covering = await self.store.blocklist.blocking("198.51.100.77")
        self.assertEqual([e.network for e in covering], ["198.51.100.0/24"])
        self.assertEqual(await self.store.blocklist.blocking("198.51.101.1"), [])
        self.assertEqual(len(await self.store.blocklist.blocking("2001:db8:1::9")), 1)

    async def test_blocking_again_replaces_reason_and_expiry(self):
        await self.store.blocklist.block("192.0.2.7", reason="first", duration=60)
        again, created = await self.store.blocklist.block("192.0.2.7", reason="second")
        self.assertFalse(created)
        self.assertEqual(again.reason, "second")
        self.assertTrue(again.permanent)
        self.assertEqual((await self.store.blocklist.entries())[1], 1)

    async def test_malformed_networks_and_durations_are_refused(self):
        for bad in ("", "not-an-ip", "10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "::1/129"):
            with self.assertRaises(ValueError, msg=bad):
                await self.store.blocklist.block(bad)
        with self.assertRaises(ValueError):
            await self.store.blocklist.block("192.0.2.1", duration=-5)
        with self.assertRaises(ValueError):
            await self.store.blocklist.block("192.0.2.1", duration=0)

    async def test_unblock_removes_exactly_that_entry(self):
        await self.store.blocklist.block("10.0.0.0/8")
        await self.store.blocklist.block("10.1.2.3")
        removed = await self.store.blocklist.unblock("10.0.0.0/8")
        self.assertEqual(removed.network, "10.0.0.0/8")
        self.assertEqual(
            [e.network for e in (await self.store.blocklist.entries())[0]], ["10.1.2.3/32"]
        )
        with self.assertRaises(NotFound):
            await self.store.blocklist.unblock("10.0.0.0/8")

    async def test_expired_entries_stop_blocking_and_are_pruned(self):
        await self.store.blocklist.block("192.0.2.1", duration=3600)
        await self.sql(
            "UPDATE ip_blocks SET created_at = now() - interval '2 hours',"
            " expires_at = now() - interval '1 hour' RETURNING id"
        )
        self.assertEqual(await self.store.blocklist.count(), 0)
        self.assertEqual((await self.store.blocklist.entries())[1], 0)
        self.assertEqual((await self.store.blocklist.entries(include_expired=True))[1], 1)
        self.assertEqual(await self.store.blocklist.refresh(), 0)
        self.assertFalse(self.store.blocklist.matcher.blocks("192.0.2.1", time.time()))
        self.assertEqual(await self.store.blocklist.prune(), 1)

    async def test_refresh_loads_the_matcher(self):
        other = self.make_store()
        await other.open(listen=False)
        self.addCleanup(other.close)
        await other.blocklist.block("192.0.2.0/24", duration=600)
        self.assertFalse(self.store.blocklist.matcher.blocks("192.0.2.9", time.time()))
        self.assertEqual(await self.store.blocklist.refresh(), 1)
        self.assertTrue(self.store.blocklist.matcher.blocks("192.0.2.9", time.time()))
        self.assertFalse(self.store.blocklist.matcher.blocks("192.0.2.9", time.time() + 601))

    async def test_a_second_process_sees_a_block_through_notify(self):
        """Another store (another process's view) hears the block on the bus and applies it."""
        other = self.make_store()
        await other.open()
        self.addCleanup(other.close)
        other.events.subscribe(lambda e: other.blocklist.apply_event(e.type, e.data))
        await aio(other.events.wait_connected(10))
        await self.store.blocklist.block("203.0.113.0/24", reason="x", duration=300)
        await wait_for(
            lambda: other.blocklist.matcher.blocks("203.0.113.50", time.time()), 10, "block heard"
        )
        await self.store.blocklist.unblock("203.0.113.0/24")
        await wait_for(
            lambda: not other.blocklist.matcher.blocks("203.0.113.50", time.time()),
            10,
            "unblock heard",
        )


class AutoBlockStoreTests(StoreTestCase):
    async def fail_from(self, ip: str, times: int) -> list:
        made = []
        for _ in range(times):
            await self.store.audit.record("auth.failure", ip=ip, success=False, severity="warning")
            made.append(await self.store.blocklist.note_failure(ip))
        return made

    async def test_no_rule_no_block(self):
        self.assertEqual(await self.fail_from("192.0.2.1", 5), [None] * 5)
        self.assertEqual(await self.store.blocklist.count(), 0)

    async def test_blocks_after_n_failures_once_and_records_it(self):
        self.store.blocklist.auto_block = AutoBlockRule(3, 600, 120, LOOPBACK)
        made = await self.fail_from("192.0.2.1", 4)
        self.assertIsNone(made[0])
        self.assertIsNone(made[1])
        block = made[2]
        self.assertIsNotNone(block)
        self.assertIsNone(made[3])  # blocked already: no second block
        self.assertTrue(block.automatic)
        self.assertEqual(block.network, "192.0.2.1/32")
        self.assertAlmostEqual((block.expires_at - block.created_at).total_seconds(), 120, delta=1)
        self.assertTrue(self.store.blocklist.matcher.blocks("192.0.2.1", time.time()))
        entries, total = await self.store.audit.query(event_type=AUTO_BLOCK_EVENT)
        self.assertEqual(total, 1)
        self.assertEqual(entries[0].ip, "192.0.2.1")
        self.assertEqual(entries[0].details["failures"], 3)
        # Failures from another address are counted separately.
        self.assertEqual(await self.fail_from("192.0.2.2", 2), [None, None])

    async def test_exempt_addresses_are_never_blocked(self):
        self.store.blocklist.auto_block = AutoBlockRule(2, 600, 120, LOOPBACK)
        self.assertEqual(await self.fail_from("127.0.0.1", 3), [None] * 3)

    async def test_failures_before_the_window_or_a_past_block_do_not_count(self):
        self.store.blocklist.auto_block = AutoBlockRule(3, 600, 120)
        await self.fail_from("192.0.2.1", 2)
        await self.sql("UPDATE audit_log SET at = now() - interval '20 minutes' RETURNING id")
        self.assertEqual(await self.fail_from("192.0.2.1", 2), [None, None])
        [block] = [b for b in await self.fail_from("192.0.2.1", 1) if b]
        # The block expires; the failures that led to it do not count again.
        await self.sql(
            "UPDATE ip_blocks SET created_at = now() - interval '1 hour',"
            " expires_at = now() - interval '1 minute' RETURNING id"
        )
        self.assertEqual(await self.fail_from("192.0.2.1", 2), [None, None])
        self.assertIsNotNone((await self.fail_from("192.0.2.1", 1))[0])
        self.assertTrue(block.automatic)


class SecuritySettingsStoreTests(StoreTestCase):
    async def test_put_get_refresh(self):
        self.assertIsNone(await self.store.security.get("rate_limits"))
        value = {"global": {"max_requests": 10, "window_seconds": 60}}
        await self.store.security.put("rate_limits", value, "tester")
        self.assertEqual(await self.store.security.get("rate_limits"), value)
        other = self.make_store()
        await other.open(listen=False)
        self.addCleanup(other.close)
        self.assertEqual(other.security.cached, {})
        self.assertEqual(await other.security.refresh(), {"rate_limits": value})
        self.assertEqual(other.security.cached["rate_limits"], value)
