"""GET /metrics: counters move with real SMTP, POP3 and HTTP traffic; the text parses."""

from __future__ import annotations

from typing import Any

import attrs
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

import a3mail
from a3mail.auth.guard import LoginGuard
from a3mail.config import load_config
from a3mail.http.ops import OpsResource
from a3mail.ops.metrics import Metrics
from a3mail.outbound.runner import QueueRunner, RunnerSettings
from a3mail.pop3.factory import POP3Factory, build_factory
from a3mail.runtime import Runtime
from a3mail.store.outbound import RecipientResult
from tests.ops.support import OpsTestCase, parse_metrics, value
from tests.pop3.support import PASSWORD, Pop3TestCase
from tests.smtp.support import SmtpTestCase, simple_message
from tests.store.helpers import aio
from tests.support.stubtreq import settle


async def scrape(runtime: Runtime) -> dict[Any, float]:
    """GET /metrics from an ops surface over *runtime*, parsed."""
    stub = StubTreq(OpsResource(runtime, Clock()))
    response = await settle(stub, stub.get("http://a3mail.test/metrics"))
    assert response.code == 200, response.code
    body = await settle(stub, stub.content(response))
    return parse_metrics(body.decode())


class SmtpMetricsTests(SmtpTestCase):
    async def test_a_session_moves_connection_message_byte_and_rejection_counters(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.message(simple_message())).code, 250)
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        await s.send(b"Subject: x\r\n\r\n" + b"l" * 2000 + b"\r\n.\r\n")  # line too long

        metrics = await scrape(self.runtime)
        self.assertEqual(value(metrics, "a3mail_connections_total", protocol="smtp"), 1)
        self.assertEqual(value(metrics, "a3mail_connections_active", protocol="smtp"), 1)
        self.assertEqual(value(metrics, "a3mail_smtp_messages_accepted_total"), 1)
        self.assertEqual(
            value(metrics, "a3mail_smtp_messages_rejected_total", reason="line_length"), 1
        )
        self.assertEqual(
            value(metrics, "a3mail_smtp_received_bytes_total"), self.stats.bytes_received
        )
        self.assertGreater(self.stats.bytes_received, 100)

        s.protocol.connectionLost(None)
        metrics = await scrape(self.runtime)
        self.assertEqual(value(metrics, "a3mail_connections_active", protocol="smtp"), 0)

    async def test_an_smtp_login_counts_as_an_smtp_auth_success(self):
        await self.user("alice@example.com")
        s = await self.greeted("submission", tls=True)
        self.assertEqual((await s.login("alice@example.com")).code, 235)
        metrics = await scrape(self.runtime)
        self.assertEqual(
            value(metrics, "a3mail_auth_attempts_total", protocol="smtp", result="success"), 1
        )


class Pop3MetricsTests(Pop3TestCase):
    def make_factory(self, **settings: Any) -> POP3Factory:
        config = load_config(None, data_dir=self.data_dir, overrides={"auth.failure_delay": 0})
        self.runtime = Runtime(config, self.store, self.tls, reactor=reactor)  # type: ignore[arg-type]
        factory = build_factory(self.runtime)
        factory.clock = self.clock
        factory.settings = attrs.evolve(self.settings, **settings)
        return factory

    async def test_sessions_count_connections_commands_and_logins(self):
        await self.deliver()
        proto, _ = await self.session()
        self.assertTrue((await self.send(proto, b"STAT\r\nRETR 1\r\n")).startswith(b"+OK 1 "))
        other, _ = self.connect()
        other.secure = True
        out = await self.send(other, b"USER alice@example.com\r\nPASS wrong\r\n")
        self.assertIn(b"-ERR", out)
        self.assertNotEqual(PASSWORD, "wrong")
        await self.send(proto, b"QUIT\r\n")

        metrics = await scrape(self.runtime)
        self.assertEqual(value(metrics, "a3mail_connections_total", protocol="pop3"), 2)
        self.assertEqual(value(metrics, "a3mail_connections_active", protocol="pop3"), 1)
        count = "a3mail_command_duration_seconds_count"
        self.assertEqual(value(metrics, count, protocol="pop3", command="USER"), 2)
        self.assertEqual(value(metrics, count, protocol="pop3", command="PASS"), 2)
        self.assertEqual(value(metrics, count, protocol="pop3", command="STAT"), 1)
        self.assertEqual(value(metrics, count, protocol="pop3", command="RETR"), 1)
        self.assertEqual(value(metrics, count, protocol="pop3", command="QUIT"), 1)
        buckets = [
            v
            for (name, labels), v in metrics.items()
            if name == "a3mail_command_duration_seconds_bucket" and ("command", "RETR") in labels
        ]
        self.assertGreater(len(buckets), 5)  # a latency histogram, not a bare counter
        auth = "a3mail_auth_attempts_total"
        self.assertEqual(value(metrics, auth, protocol="pop3", result="success"), 1)
        self.assertEqual(value(metrics, auth, protocol="pop3", result="failure"), 1)


class HttpMetricsTests(OpsTestCase):
    async def test_requests_counted_by_route_template_and_status(self):
        await self.make_user("alice@example.com")
        for _ in range(2):
            self.assertEqual((await self.get("/api/v1/users/alice@example.com")).status, 200)
        self.assertEqual((await self.get("/api/v1/users/bob@example.com")).status, 404)
        self.assertEqual((await self.get("/api/v1/no/such/thing")).status, 404)
        metrics = await self.scrape()
        route = "/api/v1/users/<user_id>"
        requests = "a3mail_http_requests_total"
        self.assertEqual(value(metrics, requests, route=route, method="GET", status="200"), 2)
        self.assertEqual(value(metrics, requests, route=route, method="GET", status="404"), 1)
        self.assertEqual(value(metrics, requests, route="unmatched", method="GET", status="404"), 1)
        latency = "a3mail_http_request_duration_seconds_count"
        self.assertEqual(value(metrics, latency, route=route, method="GET"), 3)
        routes = {dict(labels).get("route", "") for _, labels in metrics}
        self.assertFalse([r for r in routes if "alice" in r or "bob" in r], routes)

    async def test_the_ops_surface_counts_itself(self):
        await self.call("GET", "/ready", key=None)
        metrics = await self.scrape()
        requests = "a3mail_http_requests_total"
        self.assertEqual(value(metrics, requests, route="/ready", method="GET", status="503"), 1)

    async def test_live_gauges_pool_queue_process_and_database_latency(self):
        metrics = await self.scrape()
        self.assertEqual(value(metrics, "a3mail_info", version=a3mail.__version__), 1)
        self.assertGreaterEqual(value(metrics, "a3mail_uptime_seconds"), 90)
        self.assertGreater(value(metrics, "a3mail_memory_usage_bytes"), 1_000_000)
        pool = self.store.db.stats()
        self.assertEqual(
            value(metrics, "a3mail_db_pool_connections", state="max"), pool["pool_max"]
        )
        self.assertIsNotNone(value(metrics, "a3mail_db_pool_connections", state="in_use"))
        self.assertEqual(value(metrics, "a3mail_queue_size", queue="outgoing"), 0)
        self.assertEqual(value(metrics, "a3mail_queue_oldest_age_seconds"), 0)
        operations = value(metrics, "a3mail_db_operation_duration_seconds_count")
        await self.store.domains.add("latency.example")
        again = await self.scrape()
        self.assertGreater(value(again, "a3mail_db_operation_duration_seconds_count"), operations)
        self.assertIsNotNone(value(again, "a3mail_cache_hits_total", cache="charset_codecs"))


class CounterWiringTests(TestCase):
    """The queue runner, the login guard and the webhook service report to their Metrics."""

    def test_queue_runner_counts_each_recipient_result(self):
        metrics = Metrics()
        runner = QueueRunner(None, None, None, RunnerSettings(helo_name="x"), metrics=metrics)  # type: ignore[arg-type]
        runner._count(
            [
                RecipientResult("a@x.example", "sent", 250),
                RecipientResult("b@x.example", "deferred", 451),
                RecipientResult("c@x.example", "sent", 250),
            ]
        )
        samples = parse_metrics(metrics.exposition().decode())
        self.assertEqual(value(samples, "a3mail_queue_deliveries_total", result="sent"), 2)
        self.assertEqual(value(samples, "a3mail_queue_deliveries_total", result="deferred"), 1)

    async def test_login_guard_counts_by_protocol(self):
        metrics = Metrics()

        class Audit:
            async def record(self, *args: Any, **kwargs: Any) -> None:
                return None

        store: Any = type("S", (), {"audit": Audit()})()
        guard = LoginGuard(store, Clock(), 0, metrics=metrics)
        await guard.failed("imap", "someone", "192.0.2.9", "bad credentials")
        await guard.succeeded("imap", "someone", "192.0.2.9")
        await guard.succeeded("imap", "someone", "192.0.2.9")
        samples = parse_metrics(metrics.exposition().decode())
        auth = "a3mail_auth_attempts_total"
        self.assertEqual(value(samples, auth, protocol="imap", result="failure"), 1)
        self.assertEqual(value(samples, auth, protocol="imap", result="success"), 2)

    def test_unbounded_command_names_fold_into_other(self):
        metrics = Metrics()
        for n in range(250):
            metrics.command("imap", f"X{n}", 0.001)
        samples = parse_metrics(metrics.exposition().decode())
        names = {
            dict(labels)["command"]
            for name, labels in samples
            if name == "a3mail_command_duration_seconds_count"
        }
        self.assertEqual(len(names), 201)
        self.assertIn("other", names)
        self.assertEqual(
            value(
                samples, "a3mail_command_duration_seconds_count", protocol="imap", command="other"
            ),
            50,
        )


class QueueBacklogTests(OpsTestCase):
    async def test_queued_entries_show_as_size_and_oldest_age(self):
        blob = await self.store.incoming(simple_message())
        await self.store.queue.enqueue(blob, "a@example.com", ["x@a.example", "y@b.example"])
        backlog = await self.store.queue_admin.backlog()
        self.assertEqual(backlog.queues["outgoing"], 2)
        self.assertGreaterEqual(backlog.oldest_age, 0.0)
        metrics = await self.scrape()
        self.assertEqual(value(metrics, "a3mail_queue_size", queue="outgoing"), 2)
        self.assertEqual(value(metrics, "a3mail_queue_size", queue="retry"), 0)
        self.assertGreaterEqual(value(metrics, "a3mail_queue_oldest_age_seconds"), 0.0)
        reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.json["checks"]["queue"]["details"]["waiting"], 2)
        self.assertEqual(reply.json["checks"]["queue"]["status"], "healthy")

        await aio(
            self.store.db.execute(
                "UPDATE outbound_queue SET created_at = now() - interval '2 hours'"
            )
        )
        metrics = await self.scrape()
        self.assertGreaterEqual(value(metrics, "a3mail_queue_oldest_age_seconds"), 7200)
        reply = await self.call("GET", "/health", key=None)
        self.assertEqual(reply.json["checks"]["queue"]["status"], "degraded")
