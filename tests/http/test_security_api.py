"""The security API in memory: blocklist, rate limits, audit logs, overview."""

from __future__ import annotations

import time
from typing import Any

from klein import Klein

from a3mail.auth.guard import LoginGuard
from a3mail.http.admin.api import GROUPS
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import InvalidRequest
from a3mail.http.routes import endpoint
from a3mail.store.blocklist import AutoBlockRule
from tests.http.support import ApiTestCase

BLOCK = "/api/v1/security/block-ip"
BLOCKED = "/api/v1/security/blocked-ips"
LIMITS = "/api/v1/security/rate-limits"
AUDIT = "/api/v1/security/audit-logs"
OVERVIEW = "/api/v1/security/overview"


class BlocklistApiTests(ApiTestCase):
    async def test_block_list_and_unblock_an_address(self):
        reply = await self.call(
            "POST",
            BLOCK,
            json={
                "ip_address": "192.0.2.100",
                "reason": "Brute force attack detected",
                "duration": 3600,
                "permanent": False,
            },
        )
        self.assertEqual(reply.status, 201, reply.body)
        body = reply.json
        self.assertEqual(body["ip_address"], "192.0.2.100")
        self.assertEqual(body["network"], "192.0.2.100/32")
        self.assertEqual(body["reason"], "Brute force attack detected")
        self.assertFalse(body["permanent"])
        self.assertTrue(body["created"])
        self.assertIsNotNone(body["expires_at"])
        self.assertEqual(body["created_by"], f"{self.key_ids[self.admin]}")
        # This process's matcher knows at once.
        self.assertTrue(self.store.blocklist.matcher.blocks("192.0.2.100", time.time()))

        listed = await self.call("GET", BLOCKED, key="reader")
        self.assertEqual(listed.status, 200)
        self.assertEqual(listed.json["total"], 1)
        self.assertEqual(listed.json["blocked_ips"][0]["ip_address"], "192.0.2.100")
        self.assertEqual(listed.json["data"], listed.json["blocked_ips"])

        gone = await self.call("DELETE", f"{BLOCKED}/192.0.2.100")
        self.assertEqual(gone.status, 200, gone.body)
        self.assertTrue(gone.json["unblocked"])
        self.assertFalse(self.store.blocklist.matcher.blocks("192.0.2.100", time.time()))
        self.assertEqual((await self.call("GET", BLOCKED)).json["total"], 0)
        self.assertError(await self.call("DELETE", f"{BLOCKED}/192.0.2.100"), 404, "not_found")

        events = {e.event_type: e for e in (await self.store.audit.query())[0]}
        self.assertEqual(events["ip.block"].target, "192.0.2.100/32")
        self.assertEqual(events["ip.block"].severity, "warning")
        self.assertEqual(events["ip.unblock"].target, "192.0.2.100/32")

    async def test_cidr_networks_v4_and_v6_and_url_encoded_delete(self):
        v6 = await self.call("POST", BLOCK, json={"ip_address": "2001:db8::/32"})
        self.assertEqual(v6.status, 201)
        self.assertTrue(v6.json["permanent"])
        self.assertIsNone(v6.json["expires_at"])
        v4 = await self.call("POST", BLOCK, json={"ip_address": "198.51.100.0/24", "duration": 60})
        self.assertEqual(v4.json["ip_address"], "198.51.100.0/24")
        self.assertTrue(self.store.blocklist.matcher.blocks("198.51.100.9", time.time()))
        self.assertTrue(self.store.blocklist.matcher.blocks("2001:db8:5::1", time.time()))
        again = await self.call(
            "POST", BLOCK, json={"ip_address": "198.51.100.0/24", "permanent": True}
        )
        self.assertEqual(again.status, 201)
        self.assertFalse(again.json["created"])
        self.assertTrue(again.json["permanent"])
        self.assertEqual((await self.call("GET", BLOCKED)).json["total"], 2)
        reply = await self.call("DELETE", f"{BLOCKED}/198.51.100.0%2F24")
        self.assertEqual(reply.status, 200, reply.body)
        reply = await self.call("DELETE", f"{BLOCKED}/2001%3Adb8%3A%3A%2F32")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual((await self.call("GET", BLOCKED)).json["total"], 0)

    async def test_validation_errors(self):
        cases = [
            ({"ip_address": "999.1.1.1"}, "ip_address"),
            ({"ip_address": "not an address"}, "ip_address"),
            ({"ip_address": "10.0.0.1/8"}, "ip_address"),  # host bits set
            ({"ip_address": "10.0.0.0/33"}, "ip_address"),
            ({"ip_address": "192.0.2.1", "duration": -5}, "duration"),
            ({"ip_address": "192.0.2.1", "duration": 0}, "duration"),
            ({"ip_address": "192.0.2.1", "duration": "1h"}, "duration"),
            ({"ip_address": "192.0.2.1", "duration": 60, "permanent": True}, "duration"),
            ({"ip_address": "192.0.2.1", "permanent": False}, "duration"),
            ({"ip_address": "192.0.2.1", "reason": "x" * 501}, "reason"),
            ({"ip_address": "192.0.2.1", "colour": "red"}, "colour"),
            ({}, "ip_address"),
        ]
        for body, field in cases:
            reply = await self.call("POST", BLOCK, json=body)
            error = self.assertError(reply, 400, "invalid_request")
            self.assertEqual(error["details"]["field"], field, body)
        bad = await self.call("DELETE", f"{BLOCKED}/not-an-ip")
        self.assertEqual(
            self.assertError(bad, 400, "invalid_request")["details"]["field"], "ip_address"
        )
        self.assertEqual((await self.call("GET", BLOCKED)).json["total"], 0)

    async def test_changes_need_admin_reads_need_read(self):
        reply = await self.call("POST", BLOCK, key="writer", json={"ip_address": "192.0.2.1"})
        self.assertError(reply, 403, "forbidden")
        self.assertError(
            await self.call("DELETE", f"{BLOCKED}/192.0.2.1", key="writer"), 403, "forbidden"
        )
        self.assertEqual((await self.call("GET", BLOCKED, key="reader")).status, 200)
        self.assertError(await self.call("GET", BLOCKED, key=None), 401, "unauthorized")


class RateLimitApiTests(ApiTestCase):
    async def test_defaults_come_from_the_configuration(self):
        reply = await self.call("GET", LIMITS, key="reader")
        self.assertEqual(reply.status, 200)
        body = reply.json
        self.assertEqual(body["per_ip"]["max_requests"], 100)
        self.assertEqual(body["per_user"]["max_requests"], 1000)
        self.assertEqual(body["global"]["max_requests"], 0)
        self.assertEqual(body["per_ip"]["window_seconds"], 3600)
        self.assertEqual({v["source"] for k, v in body.items() if k != "violations"}, {"config"})

    async def test_put_applies_live_and_is_recorded(self):
        reply = await self.call(
            "PUT", LIMITS, json={"global": {"max_requests": 3, "window_seconds": 60}}
        )
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(
            reply.json["global"],
            {
                "max_requests": 3,
                "window_seconds": 60,
                "source": "database",
                "applies_to": reply.json["global"]["applies_to"],
            },
        )
        self.assertEqual(reply.json["per_ip"]["source"], "config")
        for _ in range(3):
            self.assertEqual((await self.call("GET", BLOCKED, key="reader")).status, 200)
        refused = await self.call("GET", BLOCKED, key="reader")
        error = self.assertError(refused, 429, "rate_limited")
        self.assertEqual(error["details"]["limit"], 3)
        self.assertEqual(refused.header("x-ratelimit-limit"), "3")
        # A new window (60 s later by the test clock) starts over.
        self.clock.advance(60)
        self.assertEqual((await self.call("GET", BLOCKED, key="reader")).status, 200)
        [entry], _ = await self.store.audit.query(event_type="security.rate_limits")
        self.assertEqual(entry.details["changed"]["global"]["max_requests"], 3)

    async def test_per_user_limit_per_key(self):
        reply = await self.call(
            "PUT", LIMITS, json={"per_user": {"max_requests": 2, "window_seconds": 600}}
        )
        self.assertEqual(reply.status, 200)
        for _ in range(2):
            self.assertEqual((await self.call("GET", LIMITS, key="reader")).status, 200)
        self.assertError(await self.call("GET", LIMITS, key="reader"), 429, "rate_limited")
        self.assertEqual((await self.call("GET", LIMITS, key="writer")).status, 200)
        # Another PUT keeps the categories it does not name.
        reply = await self.call(
            "PUT", LIMITS, json={"per_ip": {"max_requests": 5, "window_seconds": 60}}
        )
        self.assertEqual(reply.json["per_user"]["max_requests"], 2)
        self.assertEqual(reply.json["per_ip"]["max_requests"], 5)

    async def test_invalid_limits(self):
        for body, field in (
            ({"global": {"max_requests": -1, "window_seconds": 60}}, "global.max_requests"),
            ({"per_ip": {"max_requests": 1, "window_seconds": 0}}, "per_ip.window_seconds"),
            ({"per_ip": {"max_requests": 1}}, "per_ip.window_seconds"),
            ({"per_host": {"max_requests": 1, "window_seconds": 1}}, "per_host"),
        ):
            error = self.assertError(
                await self.call("PUT", LIMITS, json=body), 400, "invalid_request"
            )
            self.assertEqual(error["details"]["field"], field)
        self.assertError(await self.call("PUT", LIMITS, key="writer", json={}), 403, "forbidden")


class AuditAndOverviewApiTests(ApiTestCase):
    async def fail_login(self, ip: str, user: str = "bob@example.com") -> None:
        guard = LoginGuard(self.store, self.clock, 0)
        await guard.failed("imap", user, ip, "bad credentials")

    async def test_audit_logs_filters_and_pagination(self):
        guard = LoginGuard(self.store, self.clock, 0)
        await guard.succeeded("pop3", "alice@example.com", "192.0.2.1")
        await self.fail_login("192.0.2.9")
        await self.fail_login("192.0.2.9", "carol@example.com")
        await self.call("POST", BLOCK, json={"ip_address": "192.0.2.9"})

        everything = (await self.call("GET", AUDIT, key="reader")).json
        self.assertEqual(everything["total"], 4)
        newest = everything["logs"][0]
        self.assertEqual(newest["event_type"], "security")
        self.assertEqual(newest["action"], "ip_blocked")

        auth = (await self.call("GET", f"{AUDIT}?event_type=authentication")).json
        self.assertEqual(auth["total"], 3)
        failed = (await self.call("GET", f"{AUDIT}?event_type=auth.failure&severity=warning")).json
        self.assertEqual(failed["total"], 2)
        entry = failed["logs"][0]
        self.assertEqual(entry["outcome"], "failure")
        self.assertEqual(entry["source_ip"], "192.0.2.9")
        self.assertEqual(entry["action"], "login_failed")
        self.assertEqual(entry["metadata"]["protocol"], "imap")
        self.assertTrue(entry["id"].startswith("audit_"))
        self.assertIn("Failed IMAP login", entry["description"])

        carol = (await self.call("GET", f"{AUDIT}?user=carol@example.com")).json
        self.assertEqual(carol["total"], 1)
        page = (await self.call("GET", f"{AUDIT}?limit=1&page=2")).json
        self.assertEqual(
            (page["total"], page["page"], page["limit"], len(page["logs"])), (4, 2, 1, 1)
        )
        admin = (await self.call("GET", f"{AUDIT}?event_type=admin")).json
        self.assertEqual(admin["total"], 0)
        by_key = (await self.call("GET", f"{AUDIT}?event_type=security")).json
        self.assertEqual(by_key["total"], 1)

        past = (await self.call("GET", f"{AUDIT}?start_date=2000-01-01&end_date=2000-01-31")).json
        self.assertEqual(past["total"], 0)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        self.assertEqual((await self.call("GET", f"{AUDIT}?end_date={today}")).json["total"], 4)

    async def test_audit_logs_bad_parameters(self):
        for query, field in (
            ("start_date=yesterday", "start_date"),
            ("end_date=2024-13-01", "end_date"),
            ("start_date=2024-02-01&end_date=2024-01-01", "end_date"),
            ("severity=panic", "severity"),
            ("limit=0", "limit"),
        ):
            reply = await self.call("GET", f"{AUDIT}?{query}")
            self.assertEqual(
                self.assertError(reply, 400, "invalid_request")["details"]["field"], field
            )

    async def test_overview_is_computed_from_the_records(self):
        empty = (await self.call("GET", OVERVIEW, key="reader")).json
        self.assertEqual(empty["threat_level"], "low")
        self.assertEqual(empty["security_score"], 1.0)
        self.assertEqual(empty["failed_auth_attempts"], 0)
        for _ in range(3):
            await self.fail_login("203.0.113.7")
        await self.fail_login("203.0.113.8")
        await self.call("POST", BLOCK, json={"ip_address": "203.0.113.8", "duration": 600})
        body = (await self.call("GET", OVERVIEW)).json
        self.assertEqual(body["failed_auth_attempts"], 4)
        self.assertEqual(body["blocked_ips"], 1)
        self.assertEqual(body["active_threats"], 1)  # 203.0.113.8 is blocked already
        self.assertEqual(body["threat_level"], "medium")
        self.assertEqual(body["security_score"], 0.95)
        self.assertEqual(
            [(o["ip_address"], o["failed_attempts"]) for o in body["top_offending_ips"]],
            [("203.0.113.7", 3), ("203.0.113.8", 1)],
        )
        # The four failures and the block are warnings: security events.
        self.assertEqual(body["security_events"]["last_24h"], 5)
        self.assertEqual(body["security_events"]["last_30d"], 5)


class AutoBlockThroughTheGuardTests(ApiTestCase):
    async def test_failed_logins_from_one_address_block_it_across_protocols(self):
        self.store.blocklist.auto_block = AutoBlockRule(failures=3, window=600, duration=900)
        guard = LoginGuard(self.store, self.clock, 0)
        await guard.failed("smtp", "a@example.com", "198.51.100.4")
        await guard.failed("pop3", "b@example.com", "198.51.100.4")
        self.assertFalse(self.store.blocklist.matcher.blocks("198.51.100.4", time.time()))
        await guard.failed("imap", "c@example.com", "198.51.100.4")
        self.assertTrue(self.store.blocklist.matcher.blocks("198.51.100.4", time.time()))
        [entry] = (await self.call("GET", BLOCKED)).json["blocked_ips"]
        self.assertTrue(entry["automatic"])
        self.assertEqual(entry["created_by"], "auto-block")
        logs = (await self.call("GET", f"{AUDIT}?event_type=ip.auto_block")).json["logs"]
        self.assertEqual(logs[0]["source_ip"], "198.51.100.4")
        self.assertEqual(logs[0]["metadata"]["failures"], 3)


class Unaudited:
    """A write route that records nothing itself."""

    app = Klein()

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    @endpoint(app, "POST", "/api/v1/test/poke/<thing>", WRITE)
    async def poke(self, request: Any, thing: str) -> dict[str, Any]:
        if thing == "bad":
            raise InvalidRequest("bad thing")
        return {"poked": thing}

    @endpoint(app, "GET", "/api/v1/test/peek", READ)
    async def peek(self, request: Any) -> dict[str, Any]:
        return {}


class AdminWritesAreAuditedTests(ApiTestCase):
    groups = (*GROUPS, Unaudited)

    async def test_the_router_records_writes_their_handler_did_not(self):
        self.assertEqual(
            (await self.call("POST", "/api/v1/test/poke/it", key="writer")).status, 200
        )
        self.assertEqual((await self.call("GET", "/api/v1/test/peek")).status, 200)
        self.assertEqual((await self.call("POST", "/api/v1/test/poke/bad")).status, 400)
        self.assertEqual(
            (await self.call("POST", BLOCK, json={"ip_address": "192.0.2.1"})).status, 201
        )
        entries, _ = await self.store.audit.query()
        self.assertEqual(
            [(e.event_type, e.target) for e in entries],
            [("ip.block", "192.0.2.1/32"), ("admin.write", "/api/v1/test/poke/<thing>")],
        )
        write = entries[1]
        self.assertEqual(write.details["method"], "POST")
        self.assertEqual(write.actor, self.key_ids[self.writer])
        self.assertEqual(write.ip, "127.0.0.1")
