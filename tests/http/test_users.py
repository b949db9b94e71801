"""Users, batches, quotas and user statistics over the API."""

from __future__ import annotations

from a3mail.auth.passwords import verify_password
from a3mail.mime import parse_message
from tests.http.support import ApiTestCase

MESSAGE = (
    b"From: Sender <sender@example.org>\r\nTo: alice@example.com\r\n"
    b"Subject: Hello\r\nMessage-ID: <m1@example.org>\r\n\r\nBody text\r\n"
)


def parse(data: bytes) -> dict:
    return parse_message(data).to_json()


class UserTests(ApiTestCase):
    async def test_create_with_every_field_and_get(self):
        await self.call("POST", "/api/v1/domains", json={"name": "example.com"})
        reply = await self.call(
            "POST",
            "/api/v1/users",
            json={
                "email": "John.Doe@Example.com",
                "username": "john.doe",
                "password": "secure_password_123",
                "quota": 1073741824,
                "enabled": True,
                "groups": ["users", "staff"],
                "blockchain_address": "0x742d35Cc",
                "display_name": "John Doe",
            },
        )
        self.assertEqual(reply.status, 201)
        user = reply.json
        self.assertEqual(user["id"], str(int(user["id"])))
        self.assertEqual(
            {k: user[k] for k in ("email", "username", "quota", "enabled", "groups")},
            {
                "email": "john.doe@example.com",
                "username": "john.doe",
                "quota": 1073741824,
                "enabled": True,
                "groups": ["users", "staff"],
            },
        )
        self.assertEqual(user["blockchain_address"], "0x742d35Cc")
        self.assertEqual((user["used"], user["used_quota"], user["last_login"]), (0, 0, None))
        by_id = (await self.call("GET", f"/api/v1/users/{user['id']}", key="reader")).json
        by_address = (await self.call("GET", "/api/v1/users/john.doe@example.com")).json
        self.assertEqual(by_id, by_address)
        account = await self.store.accounts.get(int(user["id"]))
        self.assertEqual(account.attributes["blockchain_address"], "0x742d35Cc")
        [audit], _ = await self.store.audit.query(event_type="user.create")
        self.assertEqual(audit.target, "john.doe@example.com")

    async def test_invalid_email_and_unknown_domain(self):
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": "invalid-email", "password": "x"}
        )
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["message"], "Invalid email format")
        self.assertEqual(error["details"], {"field": "email", "value": "invalid-email"})
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": "a@nowhere.example", "password": "x"}
        )
        error = self.assertError(reply, 400, "invalid_request")
        self.assertIn("nowhere.example", error["message"])

    async def test_password_is_required_and_email_unique(self):
        await self.call("POST", "/api/v1/domains", json={"name": "example.com"})
        reply = await self.call("POST", "/api/v1/users", json={"email": "a@example.com"})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "password"
        )
        await self.make_user("a@example.com")
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": "A@example.com", "password": "x"}
        )
        self.assertError(reply, 409, "conflict")

    async def test_list_filters_and_a3mailer_fields(self):
        for address in ("ann@a.example", "bob@a.example", "john@b.example"):
            await self.make_user(address)
        body = (await self.call("GET", "/api/v1/users?domain=a.example")).json
        self.assertEqual([u["email"] for u in body["data"]], ["ann@a.example", "bob@a.example"])
        self.assertEqual(body["users"], body["data"])
        self.assertEqual((body["total"], body["page"], body["limit"]), (2, 1, 20))
        body = (await self.call("GET", "/api/v1/users?page=1&limit=50&search=john")).json
        self.assertEqual([u["email"] for u in body["data"]], ["john@b.example"])
        body = (await self.call("GET", "/api/v1/users?limit=1&page=3")).json
        self.assertEqual([u["email"] for u in body["data"]], ["john@b.example"])
        self.assertEqual(body["meta"]["total_pages"], 3)

    async def test_last_login_comes_from_the_audit_log(self):
        user = await self.make_user("a@example.com")
        await self.store.audit.record("auth.success", actor="a@example.com", ip="192.0.2.1")
        got = (await self.call("GET", f"/api/v1/users/{user['id']}")).json
        self.assertTrue(got["last_login"].endswith("Z"))
        listed = (await self.call("GET", "/api/v1/users")).json["data"]
        self.assertEqual(listed[0]["last_login"], got["last_login"])

    async def test_update_only_given_fields(self):
        user = await self.make_user("a@example.com", groups=["users"], username="ann")
        reply = await self.call(
            "PUT",
            f"/api/v1/users/{user['id']}",
            json={"quota": 2147483648, "enabled": False, "groups": ["users", "staff", "admin"]},
        )
        self.assertEqual(reply.status, 200)
        got = reply.json
        self.assertEqual(
            (got["quota"], got["enabled"], got["groups"], got["username"]),
            (2147483648, False, ["users", "staff", "admin"], "ann"),
        )
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}", json={"username": None})
        self.assertIsNone(reply.json["username"])
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}", json={"email": "b@x.com"})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "email"
        )

    async def test_delete_removes_the_mail(self):
        user = await self.make_user("alice@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        account = await self.store.accounts.get(int(user["id"]))
        self.assertEqual(account.message_count, 1)
        account_dir = self.data_dir / self.store.blobs.account_dir(account.id)
        self.assertTrue(account_dir.exists())
        reply = await self.call("DELETE", f"/api/v1/users/{user['id']}")
        self.assertEqual(
            reply.json, {"deleted": True, "id": user["id"], "email": "alice@example.com"}
        )
        self.assertFalse(account_dir.exists())
        self.assertError(await self.call("GET", f"/api/v1/users/{user['id']}"), 404, "not_found")
        self.assertError(await self.call("DELETE", f"/api/v1/users/{user['id']}"), 404, "not_found")

    async def test_unknown_and_impossible_ids_are_404(self):
        for user_id in ("999", "0", "99999999999999999999999", "nobody", "x@y.example"):
            self.assertError(await self.call("GET", f"/api/v1/users/{user_id}"), 404, "not_found")


class PasswordTests(ApiTestCase):
    hash_passwords = True

    async def test_password_is_stored_as_argon2_and_changeable(self):
        user = await self.make_user("a@example.com")
        account = await self.store.accounts.get(int(user["id"]))
        self.assertTrue(account.password_hash.startswith("$argon2id$"))
        self.assertTrue(verify_password(account.password_hash, "pw"))
        await self.call("PUT", f"/api/v1/users/{user['id']}", json={"password": "new one"})
        account = await self.store.accounts.get(int(user["id"]))
        self.assertTrue(verify_password(account.password_hash, "new one"))
        self.assertFalse(verify_password(account.password_hash, "pw"))


class BatchTests(ApiTestCase):
    async def test_each_user_succeeds_or_fails_alone(self):
        await self.call("POST", "/api/v1/domains", json={"name": "example.com"})
        await self.make_user("user2@example.com")
        reply = await self.call(
            "POST",
            "/api/v1/users/batch",
            json={
                "users": [
                    {"email": "user1@example.com", "password": "pass1"},
                    {"email": "user2@example.com", "password": "pass2"},
                    {"email": "user3@elsewhere.example", "password": "pass3"},
                ]
            },
        )
        self.assertEqual(reply.status, 200)
        body = reply.json
        self.assertEqual((body["created"], body["failed"]), (1, 2))
        self.assertEqual([r["status"] for r in body["data"]], ["created", "failed", "failed"])
        self.assertEqual(body["data"][0]["user"]["email"], "user1@example.com")
        self.assertEqual(body["data"][1]["error"]["code"], "conflict")
        self.assertEqual(body["data"][2]["error"]["details"]["field"], "users[2].email")

    async def test_the_whole_batch_is_validated_first(self):
        await self.call("POST", "/api/v1/domains", json={"name": "example.com"})
        reply = await self.call(
            "POST",
            "/api/v1/users/batch",
            json={"users": [{"email": "a@example.com", "password": "x"}, {"email": 5}]},
        )
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"]["field"], "users[1].email")
        self.assertEqual((await self.call("GET", "/api/v1/users")).json["total"], 0)

    async def test_size_limits(self):
        reply = await self.call("POST", "/api/v1/users/batch", json={"users": []})
        self.assertError(reply, 400, "invalid_request")
        many = [{"email": f"u{i}@example.com", "password": "x"} for i in range(101)]
        reply = await self.call("POST", "/api/v1/users/batch", json={"users": many})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "users"
        )


class QuotaAndStatsTests(ApiTestCase):
    async def test_quota_reports_usage(self):
        user = await self.make_user("alice@example.com", quota=1000)
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        quota = (await self.call("GET", f"/api/v1/users/{user['id']}/quota")).json
        self.assertEqual(
            quota,
            {
                "quota": 1000,
                "used": len(MESSAGE),
                "percentage": round(len(MESSAGE) * 100 / 1000, 2),
                "files_count": 1,
            },
        )
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}/quota", json={"quota": 0})
        self.assertEqual((reply.json["quota"], reply.json["percentage"]), (0, 0.0))
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}/quota", json={"quota": -1})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "quota"
        )
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}/quota", json={})
        self.assertError(reply, 400, "invalid_request")

    async def test_user_stats_from_real_data(self):
        user = await self.make_user("alice@example.com")
        for _ in range(2):
            blob = await self.store.incoming(MESSAGE)
            await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        await self.store.audit.record("auth.success", actor="alice@example.com")
        stats = (await self.call("GET", f"/api/v1/users/{user['id']}/stats")).json
        self.assertEqual(stats["messages_total"], 2)
        self.assertEqual(stats["unseen_total"], 2)
        self.assertEqual(stats["used"], 2 * len(MESSAGE))
        # The test clock says 2023; the messages were stored today (real time): "today" by
        # the injected clock counts everything since 2023-11-14.
        self.assertEqual(stats["messages_today"], 2)
        self.assertIsNotNone(stats["last_message_at"])
        self.assertIsNotNone(stats["last_login"])
        inbox = stats["mailboxes"][0]
        self.assertEqual(
            inbox,
            {
                "name": "INBOX",
                "special_use": None,
                "messages": 2,
                "unseen": 2,
                "size": 2 * len(MESSAGE),
            },
        )
        self.assertEqual(len(stats["mailboxes"]), 6)
