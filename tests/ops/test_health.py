"""GET /health, GET /ready, GET /api/v1/health/detailed, POST /api/v1/health/check/{c}."""

from __future__ import annotations

from unittest import mock

import a3mail
from a3mail.ops import health
from a3mail.ops.health import COMPONENTS
from a3mail.runtime import ListenerState
from tests.ops.support import OpsTestCase


class HealthTests(OpsTestCase):
    async def test_health_needs_no_key_and_reports_every_check(self):
        self.all_listening()
        reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertIn(body["status"], ("healthy", "degraded"))
        self.assertEqual(body["version"], a3mail.__version__)
        self.assertGreaterEqual(body["uptime"], 90)  # live_runtime started 90 s ago
        self.assertTrue(body["timestamp"].endswith("Z"))
        self.assertEqual(list(body["checks"]), list(COMPONENTS))
        database = body["checks"]["database"]
        self.assertEqual(database["status"], "healthy")
        self.assertGreater(database["response_time"], 0)
        pool = self.store.db.stats()
        self.assertEqual(database["details"]["pool_max"], pool["pool_max"])
        self.assertTrue(database["details"]["query_time"].endswith("ms"))
        disk = body["checks"]["disk_space"]["details"]
        self.assertEqual(disk["path"], str(self.data_dir))
        self.assertGreater(disk["total_bytes"], 0)
        self.assertGreater(body["checks"]["memory"]["details"]["process_rss_bytes"], 0)
        self.assertEqual(body["checks"]["queue"]["details"]["waiting"], 0)
        listeners = body["checks"]["listeners"]
        self.assertEqual(listeners["status"], "healthy")
        self.assertEqual(set(listeners["details"]["listeners"]), set(self.live.config.listeners))

    async def test_a_listener_down_makes_health_unhealthy_and_503(self):
        self.all_listening()
        self.live.listeners["smtp"] = ListenerState(
            "smtp", "tcp:2525", "failed", error="Address already in use"
        )
        reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.status, 503)
        self.assertEqual(reply.json["status"], "unhealthy")
        listeners = reply.json["checks"]["listeners"]["details"]
        self.assertEqual(listeners["down"], ["smtp"])
        self.assertEqual(listeners["listeners"]["smtp"]["error"], "Address already in use")

    async def test_full_disk_is_degraded_then_unhealthy(self):
        self.all_listening()
        usage = mock.Mock(percent=93.0, free=7, total=100)
        with mock.patch.object(health.psutil, "disk_usage", return_value=usage):
            reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json["checks"]["disk_space"]["status"], "degraded")
        self.assertNotEqual(reply.json["status"], "healthy")
        usage.percent = 99.0
        with mock.patch.object(health.psutil, "disk_usage", return_value=usage):
            reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.status, 503)
        self.assertEqual(reply.json["checks"]["disk_space"]["status"], "unhealthy")

    async def test_old_queue_entries_make_the_queue_degraded(self):
        self.all_listening()
        backlog = mock.Mock(queues={"outgoing": 3, "retry": 2}, oldest_age=7200.0)
        from twisted.internet.defer import succeed

        with mock.patch.object(self.store.queue_admin, "backlog", return_value=succeed(backlog)):
            reply = await self.call("GET", "/health", key=None)
        queue = reply.json["checks"]["queue"]
        self.assertEqual(queue["status"], "degraded")
        self.assertEqual(queue["details"]["waiting"], 5)
        self.assertEqual(queue["details"]["oldest_age_seconds"], 7200.0)

    async def test_only_get_and_head(self):
        reply = await self.call("POST", "/health", key=None)
        self.assertEqual(reply.status, 405)
        self.assertEqual(reply.json["error"]["code"], "method_not_allowed")
        self.assertEqual(reply.header("allow"), "GET, HEAD")
        reply = await self.call("GET", "/health/extra", key=None)
        self.assertEqual(reply.status, 404)
        self.assertEqual(reply.json["error"]["code"], "not_found")
        reply = await self.call("HEAD", "/ready", key=None)
        self.assertIn(reply.status, (200, 503))
        self.assertEqual(reply.body, b"")


class ReadyTests(OpsTestCase):
    async def test_ready_when_database_answers_and_every_listener_listens(self):
        self.all_listening()
        reply = await self.call("GET", "/ready", key=None)
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertIs(body["ready"], True)
        self.assertTrue(body["services"]["database"])
        for name in self.live.config.listeners:
            self.assertIs(body["services"][name], True)
        self.assertNotIn("failing", body)

    async def test_not_ready_while_a_listener_is_not_listening(self):
        self.all_listening()
        self.live.listeners["pop3"].state = "starting"
        del self.live.listeners["http"]
        reply = await self.call("GET", "/ready", key=None)
        self.assertEqual(reply.status, 503)
        self.assertIs(reply.json["ready"], False)
        self.assertEqual(reply.json["failing"], ["http", "pop3"])
        self.assertTrue(reply.json["services"]["database"])


class AdminHealthTests(OpsTestCase):
    async def test_detailed_needs_a_key_and_adds_process_facts(self):
        reply = await self.call("GET", "/api/v1/health/detailed", key=None)
        self.assertError(reply, 401, "unauthorized")
        reply = await self.get("/api/v1/health/detailed")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(list(reply.json["checks"]), list(COMPONENTS))
        self.assertGreater(reply.json["process"]["pid"], 0)
        self.assertEqual(reply.json["thresholds"]["disk_unhealthy_percent"], 98.0)

    async def test_check_one_component(self):
        reply = await self.call("POST", "/api/v1/health/check/database", key="reader")
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.json["component"], "database")
        self.assertEqual(reply.json["status"], "healthy")
        self.assertIn("query_time", reply.json["details"])
        reply = await self.call("POST", "/api/v1/health/check/listeners", key="reader")
        self.assertEqual(reply.json["status"], "unhealthy")  # nothing listens in this test
        self.assertEqual(sorted(reply.json["details"]["down"]), sorted(self.live.config.listeners))

    async def test_unknown_component_is_404(self):
        reply = await self.call("POST", "/api/v1/health/check/coffee", key="reader")
        error = self.assertError(reply, 404, "not_found")
        self.assertEqual(error["details"]["components"], list(COMPONENTS))
