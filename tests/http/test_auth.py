"""Bearer keys: 401 for every kind of bad key, and the authorization matrix over every route."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from a3mail.http.auth import grants
from a3mail.http.openapi import OPERATIONS
from tests.http.support import ApiTestCase

# Values for path parameters: the resources need not exist (authorization comes first).
SAMPLE = {
    "user_id": "424242",
    "uid": "1",
    "key_id": "key_0000000000000000",
    "domain_id": "424242",
    "queue_name": "incoming",
    "webhook_id": "424242",
    "ip_address": "192.0.2.1",
    "component": "database",
    "metric_name": "sample",
}


def concrete(path: str) -> str:
    """An OpenAPI path with sample values for its parameters."""
    return re.sub(r"{(\w+)}", lambda m: SAMPLE[m.group(1)], path)


class BadKeyTests(ApiTestCase):
    """401 without a usable key."""

    async def test_missing_key(self):
        reply = await self.call("GET", "/api/v1/users", key=None)
        error = self.assertError(reply, 401, "unauthorized")
        self.assertIn("Bearer", error["message"])
        self.assertEqual(reply.header("www-authenticate"), 'Bearer realm="a3mail"')

    async def test_other_scheme(self):
        reply = await self.call(
            "GET", "/api/v1/users", key=None, headers={"Authorization": f"Basic {self.admin}"}
        )
        self.assertError(reply, 401, "unauthorized")

    async def test_unknown_key(self):
        reply = await self.call("GET", "/api/v1/users", key="mk_live_" + "x" * 32)
        self.assertError(reply, 401, "unauthorized")

    async def test_garbage_key(self):
        reply = await self.call("GET", "/api/v1/users", key="\u00e9" * 300)
        self.assertError(reply, 401, "unauthorized")

    async def test_expired_key(self):
        past = datetime.now(UTC) - timedelta(minutes=1)
        token = await self.make_key(["admin"], expires_at=past)
        self.assertError(await self.call("GET", "/api/v1/users", key=token), 401, "unauthorized")

    async def test_revoked_key(self):
        token = await self.make_key(["admin"])
        self.assertEqual((await self.call("GET", "/api/v1/users", key=token)).status, 200)
        await self.store.keys.revoke(self.key_ids[token])
        self.assertError(await self.call("GET", "/api/v1/users", key=token), 401, "unauthorized")

    async def test_key_of_a_disabled_user(self):
        user = await self.make_user("owner@example.com")
        token = await self.make_key(["admin"], account_id=int(user["id"]))
        self.assertEqual((await self.call("GET", "/api/v1/users", key=token)).status, 200)
        await self.call("PUT", f"/api/v1/users/{user['id']}", json={"enabled": False})
        self.assertError(await self.call("GET", "/api/v1/users", key=token), 401, "unauthorized")

    async def test_the_secret_token_authenticates_too(self):
        created = await self.call("POST", "/api/v1/auth/keys", json={"permissions": ["read"]})
        secret = created.json["api_key"]
        self.assertTrue(secret.startswith("sk_live_"))
        reply = await self.call("GET", "/api/v1/users", key=secret)
        self.assertEqual(reply.status, 200)

    async def test_scheme_is_case_insensitive(self):
        reply = await self.call(
            "GET", "/api/v1/users", key=None, headers={"Authorization": f"bearer {self.reader}"}
        )
        self.assertEqual(reply.status, 200)


class PermissionLadderTests(ApiTestCase):
    def test_ladder(self):
        self.assertTrue(grants(("admin",), "read"))
        self.assertTrue(grants(("admin",), "write"))
        self.assertTrue(grants(("write",), "read"))
        self.assertFalse(grants(("write",), "admin"))
        self.assertFalse(grants(("read",), "write"))
        self.assertFalse(grants((), "read"))


class AuthorizationMatrixTests(ApiTestCase):
    """Each permission can call exactly the routes it should, on every route."""

    overrides = {"http.rate_limit_per_ip": 0, "http.rate_limit_per_key": 0}

    async def matrix(self, token: str, held: str) -> list[str]:
        wrong = []
        for op in OPERATIONS:
            body = {} if op.method in ("POST", "PUT") else None
            reply = await self.call(op.method, concrete(op.path), key=token, json=body)
            expected_forbidden = op.permission is not None and not grants((held,), op.permission)
            if expected_forbidden and reply.status != 403:
                wrong.append(f"{op.method} {op.path}: {reply.status}, expected 403")
            if not expected_forbidden and reply.status in (401, 403):
                wrong.append(f"{op.method} {op.path}: {reply.status}, expected allowed")
            if reply.status == 403:
                self.assertError(reply, 403, "forbidden")
        return wrong

    async def test_read_key(self):
        token = await self.make_key(["read"])
        self.assertEqual(await self.matrix(token, "read"), [])

    async def test_write_key(self):
        token = await self.make_key(["write"])
        self.assertEqual(await self.matrix(token, "write"), [])

    async def test_admin_key(self):
        token = await self.make_key(["admin"])
        self.assertEqual(await self.matrix(token, "admin"), [])

    async def test_no_bad_expired_or_revoked_key_passes_anywhere(self):
        expired = await self.make_key(
            ["admin"], expires_at=datetime.now(UTC) - timedelta(minutes=1)
        )
        revoked = await self.make_key(["admin"])
        await self.store.keys.revoke(self.key_ids[revoked])
        for token in (None, "mk_live_unknown", expired, revoked):
            for op in OPERATIONS:
                reply = await self.call(op.method, concrete(op.path), key=token)
                if op.permission is None and token is None:
                    self.assertEqual(reply.status, 200, op.path)
                else:
                    self.assertError(reply, 401, "unauthorized")

    async def test_every_route_is_in_the_matrix(self):
        self.assertEqual(len(OPERATIONS), 47)
