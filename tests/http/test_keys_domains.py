"""API keys and domains over the API."""

from __future__ import annotations

from tests.http.support import ApiTestCase


class KeyTests(ApiTestCase):
    async def test_create_returns_both_tokens_once(self):
        reply = await self.call(
            "POST",
            "/api/v1/auth/keys",
            json={
                "name": "monitoring-key",
                "permissions": ["read", "write"],
                "expires_at": "2099-12-31T23:59:59Z",
            },
        )
        self.assertEqual(reply.status, 201)
        body = reply.json
        self.assertEqual(
            set(body),
            {"key_id", "api_key", "key", "name", "permissions", "created_at", "expires_at"},
        )
        self.assertTrue(body["key_id"].startswith("key_"))
        self.assertTrue(body["api_key"].startswith("sk_live_"))
        self.assertTrue(body["key"].startswith("mk_live_"))
        self.assertEqual(body["permissions"], ["read", "write"])
        self.assertEqual(body["expires_at"], "2099-12-31T23:59:59Z")
        for token in (body["api_key"], body["key"]):
            self.assertEqual((await self.call("GET", "/api/v1/users", key=token)).status, 200)
            reply = await self.call("GET", "/api/v1/auth/keys", key=token)
            self.assertError(reply, 403, "forbidden")
        listed = (await self.call("GET", "/api/v1/auth/keys")).json
        self.assertNotIn(body["api_key"], str(listed))
        self.assertNotIn(body["key"], str(listed))
        [entry] = [k for k in listed["data"] if k["key_id"] == body["key_id"]]
        self.assertEqual(entry["status"], "active")
        self.assertEqual(entry["key_prefix"], body["key"][:14])
        [audit], _ = await self.store.audit.query(event_type="api_key.create")
        self.assertEqual(audit.target, body["key_id"])
        self.assertEqual(audit.actor, self.key_ids[self.admin])
        self.assertEqual(audit.ip, "127.0.0.1")

    async def test_default_permission_is_read(self):
        body = (await self.call("POST", "/api/v1/auth/keys", json={})).json
        self.assertEqual(body["permissions"], ["read"])
        self.assertIsNone(body["expires_at"])

    async def test_admin_implies_the_permissions_it_may_grant(self):
        # Only admin keys manage keys, and admin implies write and read: an admin-only key
        # may grant all three (a key can never grant a permission it lacks).
        admin_only = await self.make_key(["admin"])
        reply = await self.call(
            "POST", "/api/v1/auth/keys", key=admin_only, json={"permissions": ["read", "admin"]}
        )
        self.assertEqual(reply.status, 201)

    async def test_past_expiry_and_bad_permission_are_400(self):
        reply = await self.call(
            "POST", "/api/v1/auth/keys", json={"expires_at": "2001-01-01T00:00:00Z"}
        )
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "expires_at"
        )
        reply = await self.call("POST", "/api/v1/auth/keys", json={"permissions": ["root"]})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "permissions[0]"
        )
        reply = await self.call("POST", "/api/v1/auth/keys", json={"expires_at": "tomorrow"})
        self.assertError(reply, 400, "invalid_request")

    async def test_revoke(self):
        token = await self.make_key(["read"], name="temp")
        key_id = self.key_ids[token]
        reply = await self.call("DELETE", f"/api/v1/auth/keys/{key_id}")
        self.assertEqual(reply.status, 200)
        self.assertEqual((reply.json["revoked"], reply.json["status"]), (True, "revoked"))
        self.assertError(await self.call("GET", "/api/v1/users", key=token), 401, "unauthorized")
        listed = (await self.call("GET", "/api/v1/auth/keys")).json["data"]
        self.assertNotIn(key_id, [k["key_id"] for k in listed])
        listed = (await self.call("GET", "/api/v1/auth/keys?include_revoked=true")).json["data"]
        self.assertIn(key_id, [k["key_id"] for k in listed])
        [audit], _ = await self.store.audit.query(event_type="api_key.revoke")
        self.assertEqual((audit.target, audit.severity), (key_id, "warning"))

    async def test_revoke_unknown_is_404(self):
        self.assertError(await self.call("DELETE", "/api/v1/auth/keys/key_nope"), 404, "not_found")


class DomainTests(ApiTestCase):
    async def test_create_by_name_or_domain_and_list_with_users_count(self):
        reply = await self.call("POST", "/api/v1/domains", json={"name": "Example.COM"})
        self.assertEqual(reply.status, 201)
        self.assertEqual(reply.json["name"], "example.com")
        reply = await self.call(
            "POST",
            "/api/v1/domains",
            json={"domain": "b.example", "enabled": False, "max_users": 10, "max_quota": 1000},
        )
        self.assertEqual(
            {k: reply.json[k] for k in ("domain", "enabled", "max_users", "max_quota")},
            {"domain": "b.example", "enabled": False, "max_users": 10, "max_quota": 1000},
        )
        await self.make_user("a@example.com")
        listed = (await self.call("GET", "/api/v1/domains")).json["data"]
        self.assertEqual(
            [(d["name"], d["users_count"]) for d in listed], [("b.example", 0), ("example.com", 1)]
        )

    async def test_duplicate_is_409(self):
        await self.call("POST", "/api/v1/domains", json={"name": "example.com"})
        reply = await self.call("POST", "/api/v1/domains", json={"domain": "EXAMPLE.com"})
        self.assertError(reply, 409, "conflict")

    async def test_name_is_required_and_checked(self):
        self.assertError(
            await self.call("POST", "/api/v1/domains", json={}), 400, "invalid_request"
        )
        reply = await self.call("POST", "/api/v1/domains", json={"name": "not a domain"})
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "name"
        )
        reply = await self.call(
            "POST", "/api/v1/domains", json={"name": "a.com", "domain": "b.com"}
        )
        self.assertError(reply, 400, "invalid_request")

    async def test_delete_with_users_needs_force(self):
        user = await self.make_user("a@example.com")
        domain_id = (await self.call("GET", "/api/v1/domains")).json["data"][0]["id"]
        reply = await self.call("DELETE", f"/api/v1/domains/{domain_id}")
        error = self.assertError(reply, 409, "conflict")
        self.assertIn("force=true", error["message"])
        reply = await self.call("DELETE", "/api/v1/domains/example.com?force=true")
        self.assertEqual(reply.json, {"deleted": True, "id": domain_id, "name": "example.com"})
        self.assertError(await self.call("GET", f"/api/v1/users/{user['id']}"), 404, "not_found")
        self.assertError(
            await self.call("DELETE", f"/api/v1/domains/{domain_id}"), 404, "not_found"
        )

    async def test_delete_empty_domain(self):
        created = (await self.call("POST", "/api/v1/domains", json={"name": "x.example"})).json
        reply = await self.call("DELETE", f"/api/v1/domains/{created['id']}")
        self.assertEqual(reply.status, 200)
        [audit], _ = await self.store.audit.query(event_type="domain.delete")
        self.assertEqual(audit.target, "x.example")

    async def test_max_users_is_enforced(self):
        await self.call("POST", "/api/v1/domains", json={"name": "small.example", "max_users": 1})
        await self.make_user("a@small.example")
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": "b@small.example", "password": "pw"}
        )
        error = self.assertError(reply, 409, "conflict")
        self.assertEqual(error["details"]["reason"], "domain_limit")
        self.assertIn("at most 1 users", error["message"])

    async def test_max_quota_is_enforced_on_create_and_change(self):
        await self.call("POST", "/api/v1/domains", json={"name": "q.example", "max_quota": 1000})
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": "a@q.example", "password": "p", "quota": 2000}
        )
        self.assertError(reply, 409, "conflict")
        user = await self.make_user("a@q.example", quota=1000)
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}/quota", json={"quota": 1001})
        self.assertEqual(self.assertError(reply, 409, "conflict")["details"]["field"], "quota")
        reply = await self.call("PUT", f"/api/v1/users/{user['id']}", json={"quota": 0})
        self.assertError(reply, 409, "conflict")  # unlimited is over any max_quota
