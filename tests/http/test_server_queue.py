"""Server info, reload and statistics; the outbound queue endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import a3mail
from a3mail.smtp import stats as smtp_stats
from a3mail.store.db import deferred
from tests.http.support import ApiTestCase


class ServerTests(ApiTestCase):
    def runtime(self) -> Any:
        return self.live_runtime()

    async def test_info(self):
        info = (await self.call("GET", "/api/v1/server/info", key="reader")).json
        self.assertEqual(info["version"], a3mail.__version__)
        self.assertEqual((info["hostname"], info["status"]), ("mx.example.org", "running"))
        self.assertGreaterEqual(info["uptime"], 90)
        self.assertIn("smtp", info["features"])
        self.assertIn("http", info["features"])
        self.assertNotIn("submissions", info["features"])
        self.assertEqual(info["listeners"]["http"], "tcp:8080:interface=127.0.0.1")
        self.assertTrue(info["build_date"].endswith("Z"))

    async def test_reload_reports_changes_and_applies_them(self):
        old_context = self.live.tls.getContext()
        self.config_file.write_text(
            f'data_dir = "{self.data_dir}"\nhostname = "mx.example.org"\n'
            '[limits]\nmax_message_size = "10M"\n[http]\nrate_limit_per_key = 5\n'
        )
        reply = await self.call("POST", "/api/v1/server/reload")
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertEqual(body["changed"], ["http.rate_limit_per_key", "limits.max_message_size"])
        self.assertEqual(body["applied"], ["http.rate_limit_per_key"])
        self.assertEqual(body["restart_required"], ["limits.max_message_size"])
        self.assertTrue(body["tls"]["reloaded"])
        self.assertIsNot(self.live.tls.getContext(), old_context)
        self.assertEqual(self.live.config.limits.max_message_size, 10 * 1024 * 1024)
        reply = await self.call("GET", "/api/v1/users")
        self.assertEqual(reply.header("x-ratelimit-limit"), "5")  # in force at once
        [audit], _ = await self.store.audit.query(event_type="server.reload")
        self.assertEqual(audit.details["changed"], body["changed"])

    async def test_reload_with_a_bad_file_changes_nothing(self):
        before = self.live.config
        self.config_file.write_text('[limits]\nmax_message_size = "lots"\n')
        reply = await self.call("POST", "/api/v1/server/reload")
        error = self.assertError(reply, 400, "invalid_request")
        self.assertTrue(error["message"].startswith("config: limits.max_message_size:"))
        self.assertIs(self.live.config, before)

    async def test_reload_with_a_bad_certificate_keeps_the_old_one(self):
        bad = Path(self.mktemp())
        bad.write_text("not a certificate")
        self.config_file.write_text(
            f'data_dir = "{self.data_dir}"\n[tls]\ncertificate = "{bad}"\nprivate_key = "{bad}"\n'
        )
        old = (self.live.tls.certificate, self.live.tls.getContext())
        reply = await self.call("POST", "/api/v1/server/reload")
        self.assertTrue(
            self.assertError(reply, 400, "invalid_request")["message"].startswith("tls.")
        )
        self.assertEqual((self.live.tls.certificate, self.live.tls.getContext()), old)

    async def test_reload_needs_admin(self):
        self.assertError(
            await self.call("POST", "/api/v1/server/reload", key="writer"), 403, "forbidden"
        )

    async def test_stats_from_real_data(self):
        self.patch(smtp_stats, "STATS", smtp_stats.SmtpStats())
        smtp_stats.STATS.connection_opened()
        metrics = self.live.metrics
        metrics.connection_opened("smtp")
        metrics.connection_opened("imap")
        metrics.connection_closed("imap")
        metrics.command("imap", "LOGIN", 0.01)
        metrics.command("imap", "SELECT", 0.002)
        smtp_stats.STATS.accepted(100)
        smtp_stats.STATS.rejected("spam")
        user = await self.make_user("a@example.com", quota=0)
        blob = await self.store.incoming(b"Subject: x\r\n\r\nbody\r\n")
        await self.store.messages.deliver(blob, ["a@example.com"])
        stats = (await self.call("GET", "/api/v1/stats")).json
        self.assertEqual(
            {k: stats[k] for k in ("users_total", "domains_total", "messages_total")},
            {"users_total": 1, "domains_total": 1, "messages_total": 1},
        )
        self.assertEqual(stats["messages_today"], 1)
        self.assertEqual(stats["storage_used"], len(b"Subject: x\r\n\r\nbody\r\n"))
        self.assertEqual(stats["sessions_active"], 1)
        self.assertEqual(
            stats["smtp"],
            {"received": 1, "rejected": 1, "connections": 1, "connections_active": 1},
        )
        self.assertEqual(stats["imap"], {"connections": 1, "connections_active": 0, "commands": 2})
        self.assertEqual(stats["pop3"], {"connections": 0, "connections_active": 0, "commands": 0})
        self.assertGreaterEqual(stats["uptime"], 90)
        self.assertTrue(user)


class NoRuntimeTests(ApiTestCase):
    async def test_server_facts_need_a_runtime(self):
        reply = await self.call("GET", "/api/v1/server/info")
        self.assertError(reply, 503, "service_unavailable")


class QueueTests(ApiTestCase):
    def execute(self, query: str, params: Any = None) -> Any:
        """Run one statement without rows."""
        return deferred(self.store.db.execute)(query, params)

    async def enqueue(self, recipients: list[str]) -> list[int]:
        blob = await self.store.incoming(b"Subject: out\r\n\r\nbody\r\n")
        return await self.store.queue.enqueue(blob, "alice@example.com", recipients)

    async def test_status_list_retry_purge(self):
        fresh = await self.enqueue(["a@one.example"])
        [retry_id] = await self.enqueue(["b@two.example"])
        [bounce_id] = await self.enqueue(["c@three.example"])
        await self.execute(
            "UPDATE outbound_queue SET attempts = 2, next_attempt_at = now() + interval '1 hour'"
            " WHERE id = %s",
            (retry_id,),
        )
        await self.execute(
            "UPDATE outbound_queue SET state = 'failed', attempts = 1 WHERE id = %s", (bounce_id,)
        )
        status = (await self.call("GET", "/api/v1/queue/status", key="reader")).json
        self.assertEqual(
            status,
            {
                "total_messages": 3,
                "active_messages": 0,
                "deferred_messages": 1,
                "bounced_messages": 1,
                "queues": {"incoming": 0, "outgoing": 1, "retry": 1, "bounce": 1},
                "states": {"queued": 2, "sending": 0, "sent": 0, "failed": 1, "bounced": 0},
            },
        )
        listed = (await self.call("GET", "/api/v1/queue")).json
        self.assertEqual([e["queue"] for e in listed["data"]], ["outgoing", "retry", "bounce"])
        self.assertEqual(listed["data"][0]["id"], str(fresh[0]))
        self.assertEqual(listed["data"][0]["recipients"], ["a@one.example"])
        only = (await self.call("GET", "/api/v1/queue?queue=deferred")).json
        self.assertEqual([e["id"] for e in only["data"]], [str(retry_id)])
        self.assertError(await self.call("GET", "/api/v1/queue?queue=x"), 400, "invalid_request")

        reply = await self.call("POST", "/api/v1/queue/retry")
        self.assertEqual(reply.json, {"retried": 1})
        [row] = await self.sql(
            "SELECT next_attempt_at <= now() AS due FROM outbound_queue WHERE id = %s", (retry_id,)
        )
        self.assertTrue(row["due"])
        reply = await self.call("POST", "/api/v1/queue/retry", json={"include_failed": True})
        self.assertEqual(reply.json, {"retried": 1})
        [row] = await self.sql("SELECT state FROM outbound_queue WHERE id = %s", (bounce_id,))
        self.assertEqual(row["state"], "queued")

        reply = await self.call("DELETE", "/api/v1/queue/outgoing")
        self.assertEqual(reply.json, {"queue": "outgoing", "removed": 1, "skipped": 0})
        files = list((self.data_dir / "mail" / "queue").iterdir())
        self.assertEqual(len(files), 2)  # the purged message's file is gone
        reply = await self.call("DELETE", "/api/v1/queue/all")
        self.assertEqual(reply.json["removed"], 2)
        self.assertEqual(list((self.data_dir / "mail" / "queue").iterdir()), [])
        [audit, *_], _ = await self.store.audit.query(event_type="queue.purge")
        self.assertEqual(audit.target, "all")

    async def test_entries_being_sent_are_not_purged(self):
        [entry] = await self.enqueue(["a@one.example"])
        await self.execute("UPDATE outbound_queue SET state = 'sending' WHERE id = %s", (entry,))
        reply = await self.call("DELETE", "/api/v1/queue/outgoing")
        self.assertEqual(reply.json, {"queue": "outgoing", "removed": 0, "skipped": 1})

    async def test_unknown_queue_is_404(self):
        self.assertError(await self.call("DELETE", "/api/v1/queue/nope"), 404, "not_found")
        self.assertError(await self.call("DELETE", "/api/v1/queue/status"), 404, "not_found")
        reply = await self.call("GET", "/api/v1/queue/outgoing")
        self.assertError(reply, 405, "method_not_allowed")

    async def test_retry_body_is_validated(self):
        reply = await self.call("POST", "/api/v1/queue/retry", json={"ids": ["1"]})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "ids[0]"
        )
