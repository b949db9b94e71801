"""Custom metrics (stored in PostgreSQL, exported in /metrics) and the system and application
figures of the admin API."""

from __future__ import annotations

from a3mail.caches import CACHES
from a3mail.store import custom_metrics
from a3mail.store.records import Conflict, LimitExceeded, NotFound
from tests.ops.support import OpsTestCase, value
from tests.support.store import StoreTestCase


class CustomMetricStoreTests(StoreTestCase):
    async def test_counters_add_gauges_replace_per_label_set(self):
        metrics = self.store.custom_metrics
        await metrics.post("jobs", "counter", 2, {"queue": "a"})
        await metrics.post("jobs", "counter", 3, {"queue": "a"})
        await metrics.post("jobs", "counter", 1, {"queue": "b"})
        await metrics.post("temp", "gauge", 20.5, {})
        await metrics.post("temp", "gauge", 19.0, {})
        jobs = await metrics.get("jobs")
        self.assertEqual(
            [(s.labels, s.value) for s in jobs], [({"queue": "a"}, 5), ({"queue": "b"}, 1)]
        )
        [temp] = await metrics.get("temp")
        self.assertEqual((temp.kind, temp.value), ("gauge", 19.0))
        self.assertEqual(len(await metrics.all()), 3)

    async def test_a_name_keeps_its_kind_and_unknown_names_are_not_found(self):
        await self.store.custom_metrics.post("jobs", "counter", 1, {})
        with self.assertRaises(Conflict):
            await self.store.custom_metrics.post("jobs", "gauge", 1, {"x": "y"})
        with self.assertRaises(NotFound):
            await self.store.custom_metrics.get("nothing")

    async def test_the_number_of_series_is_bounded(self):
        self.patch(custom_metrics, "MAX_SERIES", 2)
        await self.store.custom_metrics.post("m", "gauge", 1, {"n": "1"})
        await self.store.custom_metrics.post("m", "gauge", 1, {"n": "2"})
        with self.assertRaises(LimitExceeded):
            await self.store.custom_metrics.post("m", "gauge", 1, {"n": "3"})
        await self.store.custom_metrics.post("m", "gauge", 5, {"n": "2"})  # updates still work


class CustomMetricApiTests(OpsTestCase):
    async def test_post_then_get_and_export(self):
        body = {
            "name": "emails_processed",
            "type": "counter",
            "value": 42,
            "labels": {"service": "p"},
        }
        reply = await self.call("POST", "/api/v1/metrics/custom", json=body)
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.json["series"][0]["value"], 42)
        await self.call("POST", "/api/v1/metrics/custom", json={**body, "value": 8})
        reply = await self.get("/api/v1/metrics/custom/emails_processed")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json["type"], "counter")
        self.assertEqual(reply.json["exported_as"], "a3mail_custom_emails_processed")
        self.assertEqual(
            reply.json["series"],
            [
                {
                    "labels": {"service": "p"},
                    "value": 50.0,
                    "updated_at": reply.json["series"][0]["updated_at"],
                }
            ],
        )
        await self.call("POST", "/api/v1/metrics/custom", json={"name": "room_temp", "value": 21.5})
        metrics = await self.scrape()
        self.assertEqual(value(metrics, "a3mail_custom_emails_processed_total", service="p"), 50.0)
        self.assertEqual(value(metrics, "a3mail_custom_room_temp"), 21.5)
        [entry], _ = await self.store.audit.query(event_type="metrics.custom", limit=1)
        self.assertEqual(entry.target, "room_temp")

    async def test_writes_need_admin_and_reads_need_read(self):
        body = {"name": "x", "value": 1}
        self.assertError(
            await self.call("POST", "/api/v1/metrics/custom", key="writer", json=body),
            403,
            "forbidden",
        )
        self.assertError(await self.get("/api/v1/metrics/custom/x", key=None), 401, "unauthorized")

    async def test_bad_input_is_400_naming_the_field(self):
        cases = [
            ({"name": "9lives", "value": 1}, "name"),
            ({"name": "a-b", "value": 1}, "name"),
            ({"name": "ok", "value": "1"}, "value"),
            ({"name": "ok", "value": 1, "type": "histogram"}, "type"),
            ({"name": "ok", "type": "counter", "value": -1}, "value"),
            ({"name": "ok", "value": 1, "labels": {"bad-label": "v"}}, "labels.bad-label"),
            ({"name": "ok", "value": 1, "labels": {"l": 3}}, "labels.l"),
            ({"name": "ok", "value": 1, "labels": {f"l{i}": "v" for i in range(11)}}, "labels"),
            ({"name": "ok"}, "value"),
        ]
        for body, field in cases:
            reply = await self.call("POST", "/api/v1/metrics/custom", json=body)
            error = self.assertError(reply, 400, "invalid_request")
            self.assertEqual(error["details"]["field"], field, body)

    async def test_kind_conflict_is_409_and_unknown_is_404(self):
        await self.call("POST", "/api/v1/metrics/custom", json={"name": "k", "value": 1})
        reply = await self.call(
            "POST", "/api/v1/metrics/custom", json={"name": "k", "type": "counter", "value": 1}
        )
        self.assertError(reply, 409, "conflict")
        self.assertError(await self.get("/api/v1/metrics/custom/nope"), 404, "not_found")
        self.assertError(await self.get("/api/v1/metrics/custom/no-pe"), 404, "not_found")


class SystemAndApplicationTests(OpsTestCase):
    async def test_system_metrics_are_measured(self):
        reply = await self.get("/api/v1/metrics/system")
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertGreater(body["memory_usage"], 0)
        self.assertGreater(body["memory_total"], body["memory_usage"])
        self.assertGreater(body["disk_total"], 0)
        self.assertGreaterEqual(body["network_rx_bytes"], 0)
        self.assertEqual(set(body["load_average"]), {"1m", "5m", "15m"})
        self.assertGreaterEqual(body["uptime"], 90)
        self.assertGreaterEqual(body["active_connections"], 0)
        self.assertIsInstance(body["cpu_usage"], float)

    async def test_application_metrics_follow_the_traffic(self):
        self.clock.advance(10)
        for _ in range(3):
            await self.get("/api/v1/users")
        await self.get("/api/v1/users/nobody@example.com")
        self.live.metrics.connection_opened("smtp")
        self.live.metrics.connection_opened("pop3")
        reply = await self.get("/api/v1/metrics/application")
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        # 4 requests before this one (which is counted when it is written).
        self.assertEqual(body["total_requests"], 4)
        self.assertEqual(body["successful_requests"], 3)
        self.assertEqual(body["client_errors"], 1)
        self.assertEqual(body["failed_requests"], 0)
        self.assertEqual(body["active_sessions"], 2)
        self.assertEqual(body["sessions_by_protocol"], {"pop3": 1, "smtp": 1})
        self.assertEqual(
            body["queue_sizes"], {"incoming": 0, "outgoing": 0, "retry": 0, "bounce": 0}
        )
        self.assertEqual(set(body["cache_hit_rates"]), set(CACHES))
        self.assertEqual(body["p95_response_time"], 0.0)  # the test clock stands still
        self.assertGreater(body["requests_per_second"], 0)
