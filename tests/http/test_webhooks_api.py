"""The webhook endpoints over the webhooks store."""

from __future__ import annotations

from datetime import UTC, datetime

from a3mail.store.webhooks import AttemptOutcome
from tests.http.support import ApiTestCase


class WebhookTests(ApiTestCase):
    async def test_create_shows_the_secret_once_then_list_and_delete(self):
        reply = await self.call(
            "POST",
            "/api/v1/webhooks",
            json={
                "url": "https://example.com/webhook",
                "events": ["email.received", "email.sent"],
                "secret": "webhook_secret",
            },
        )
        self.assertEqual(reply.status, 201, reply.body)
        hook = reply.json
        self.assertEqual(hook["secret"], "webhook_secret")
        self.assertEqual(hook["events"], ["email.received", "email.sent"])
        self.assertIsNone(hook["user_id"])
        listed = (await self.call("GET", "/api/v1/webhooks", key="reader")).json
        self.assertEqual([h["id"] for h in listed["data"]], [hook["id"]])
        self.assertNotIn("secret", listed["data"][0])
        [audit], _ = await self.store.audit.query(event_type="webhook.create")
        self.assertEqual(audit.target, "https://example.com/webhook")
        reply = await self.call("DELETE", f"/api/v1/webhooks/{hook['id']}")
        self.assertEqual(reply.json, {"deleted": True, "id": hook["id"]})
        self.assertEqual((await self.call("GET", "/api/v1/webhooks")).json["data"], [])
        reply = await self.call("DELETE", f"/api/v1/webhooks/{hook['id']}")
        self.assertError(reply, 404, "not_found")

    async def test_a_secret_is_generated_when_none_is_given(self):
        reply = await self.call(
            "POST", "/api/v1/webhooks", json={"url": "https://e.com/h", "events": ["email.sent"]}
        )
        self.assertGreaterEqual(len(reply.json["secret"]), 32)

    async def test_scoped_to_one_user(self):
        user = await self.make_user("a@example.com")
        reply = await self.call(
            "POST",
            "/api/v1/webhooks",
            json={"url": "https://e.com/h", "events": ["email.received"], "user": user["email"]},
        )
        self.assertEqual(reply.json["user_id"], user["id"])
        reply = await self.call(
            "POST",
            "/api/v1/webhooks",
            json={"url": "https://e.com/h", "events": ["email.received"], "user": "999"},
        )
        self.assertError(reply, 404, "not_found")

    async def test_bad_requests_name_the_field(self):
        cases = [
            ({"url": "ftp://e.com/", "events": ["email.sent"]}, "url"),
            ({"url": "http://127.0.0.1/hook", "events": ["email.sent"]}, "url"),
            ({"url": "https://e.com/", "events": ["email.exploded"]}, "events[0]"),
            ({"url": "https://e.com/", "events": []}, "events"),
            ({"url": "https://e.com/", "events": ["email.sent"], "secret": "short"}, "secret"),
            ({"events": ["email.sent"]}, "url"),
        ]
        for body, field in cases:
            reply = await self.call("POST", "/api/v1/webhooks", json=body)
            error = self.assertError(reply, 400, "invalid_request")
            self.assertEqual(error["details"]["field"], field, body)

    async def test_deliveries_with_their_attempts(self):
        hook = (
            await self.call(
                "POST",
                "/api/v1/webhooks",
                json={"url": "https://e.com/h", "events": ["email.sent"]},
            )
        ).json
        for n in range(3):
            await self.store.webhooks.emit("email.sent", f"test:{n}", {"n": n})
        now = datetime.now(UTC)
        [first, *_] = await self.store.webhooks.lease("w", now=now, lease_seconds=60, limit=10)
        await self.store.webhooks.record_attempt(
            first.id,
            "w",
            AttemptOutcome(started_at=now, duration=0.05, response_status=500),
            now=now,
            max_attempts=5,
            backoff=[30.0],
        )
        path = f"/api/v1/webhooks/{hook['id']}/deliveries"
        body = (await self.call("GET", f"{path}?limit=2")).json
        self.assertEqual(body["meta"]["total"], 3)
        self.assertEqual(len(body["data"]), 2)
        older = (await self.call("GET", f"{path}?limit=2&page=2")).json["data"]
        [tried] = [d for d in older if d["id"] == str(first.id)]
        self.assertEqual((tried["status"], tried["attempts"]), ("retrying", 1))
        self.assertEqual(tried["attempt_log"][0]["response_status"], 500)
        self.assertError(
            await self.call("GET", "/api/v1/webhooks/999/deliveries"), 404, "not_found"
        )
        self.assertError(
            await self.call("GET", "/api/v1/webhooks/99999999999999999999/deliveries"),
            404,
            "not_found",
        )


class PrivateTargetTests(ApiTestCase):
    overrides = {"webhooks.allow_private_targets": True}

    async def test_private_targets_allowed_by_configuration(self):
        reply = await self.call(
            "POST",
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["email.received"]},
        )
        self.assertEqual(reply.status, 201, reply.body)
