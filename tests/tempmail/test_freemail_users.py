"""Freemail user administration in memory (strict admin only): list, create, update,
delete, a user's mailboxes, assign and unassign; everyone else gets 403."""

from __future__ import annotations

from tests.tempmail.freemail_support import FreemailTestCase


class UserAdminTests(FreemailTestCase):
    async def test_list_users_with_mailbox_counts(self):
        await self.create("one")
        reply = await self.call("GET", "/api/users", who="root")
        self.assertEqual([u["username"] for u in reply.json], ["bob", "alice"])
        alice = reply.json[1]
        self.assertEqual(
            alice,
            {
                "id": self.alice_user.id,
                "username": "alice",
                "role": "user",
                "mailbox_limit": 3,
                "can_send": 1,
                "mailbox_count": 1,
                "created_at": alice["created_at"],
            },
        )
        ascending = await self.call("GET", "/api/users?sort=asc&limit=1", who="admin")
        self.assertEqual([u["username"] for u in ascending.json], ["alice"])
        self.assertError(await self.call("GET", "/api/users?sort=up", who="root"), 400)

    async def test_create_a_user_who_then_logs_in(self):
        reply = await self.call(
            "POST",
            "/api/users",
            who="root",
            json={"username": "carol", "password": "carolpw", "role": "user", "mailboxLimit": 1},
        )
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(
            {k: reply.json[k] for k in ("username", "role", "mailbox_limit", "can_send")},
            {"username": "carol", "role": "user", "mailbox_limit": 1, "can_send": 0},
        )
        login = await self.login("carol", "carolpw")
        self.assertEqual(login.json["mailbox_limit"], 1)

    async def test_create_uses_the_configured_default_limit(self):
        reply = await self.call(
            "POST", "/api/users", who="root", json={"username": "dave", "password": "p"}
        )
        self.assertEqual(reply.json["mailbox_limit"], 3)

    async def test_create_refuses_bad_or_taken_names(self):
        for body, status in (
            ({"username": "alice", "password": "p"}, 409),
            ({"username": "guest", "password": "p"}, 400),
            ({"username": "admin", "password": "p"}, 400),
            ({"username": "a@b", "password": "p"}, 400),
            ({"username": "x", "password": ""}, 400),
            ({"username": "x", "password": "p", "role": "strictAdmin"}, 400),
            ({"username": "x", "password": "p", "mailboxLimit": -1}, 400),
        ):
            self.assertError(await self.call("POST", "/api/users", who="root", json=body), status)

    async def test_update_a_user(self):
        reply = await self.call(
            "PATCH",
            f"/api/users/{self.bob_user.id}",
            who="root",
            json={
                "username": "robert",
                "password": "newpw",
                "mailboxLimit": 7,
                "can_send": 1,
                "role": "admin",
            },
        )
        self.assertEqual(reply.json, {"success": True})
        user = await self.store.freemail.user(self.bob_user.id)
        self.assertEqual(
            (user.username, user.mailbox_limit, user.can_send, user.role),
            ("robert", 7, True, "admin"),
        )
        self.assertEqual((await self.login("robert", "newpw")).status, 200)
        self.assertError(
            await self.call("PATCH", "/api/users/99999", who="root", json={"can_send": 1}), 404
        )
        for name in ("admin", "guest", ""):
            reply = await self.call(
                "PATCH", f"/api/users/{self.bob_user.id}", who="root", json={"username": name}
            )
            self.assertError(reply, 400)
        self.assertError(
            await self.call(
                "PATCH", f"/api/users/{self.bob_user.id}", who="root", json={"username": "alice"}
            ),
            409,
        )

    async def test_delete_a_user_keeps_its_mailboxes(self):
        box = await self.create("kept", who="bob")
        reply = await self.call("DELETE", f"/api/users/{self.bob_user.id}", who="root")
        self.assertEqual(reply.json, {"success": True})
        self.assertIsNone(await self.store.freemail.user(self.bob_user.id))
        self.assertIsNotNone(await self.store.freemail.mailbox(address=box["email"]))
        self.assertError(
            await self.call("DELETE", f"/api/users/{self.bob_user.id}", who="root"), 404
        )

    async def test_assign_unassign_and_a_users_mailboxes(self):
        box = await self.create("given", who="root")
        body = {"username": "bob", "address": box["email"]}
        self.assertEqual(
            (await self.call("POST", "/api/users/assign", who="root", json=body)).json,
            {"success": True},
        )
        listed = await self.call("GET", f"/api/users/{self.bob_user.id}/mailboxes", who="root")
        self.assertEqual(
            listed.json,
            [{"address": box["email"], "created_at": listed.json[0]["created_at"], "is_pinned": 0}],
        )
        self.assertEqual(
            (await self.call("GET", "/api/mailboxes", who="bob")).json[0]["address"], box["email"]
        )
        self.assertEqual(
            (await self.call("POST", "/api/users/unassign", who="root", json=body)).json,
            {"success": True},
        )
        self.assertEqual((await self.call("GET", "/api/mailboxes", who="bob")).json, [])
        self.assertError(await self.call("POST", "/api/users/unassign", who="root", json=body), 404)
        self.assertError(
            await self.call(
                "POST",
                "/api/users/assign",
                who="root",
                json={"username": "nobody", "address": box["email"]},
            ),
            404,
        )
        self.assertError(await self.call("GET", "/api/users/99999/mailboxes", who="root"), 404)

    async def test_users_endpoints_are_strict_admin_only(self):
        await self.store.freemail.update_user(self.bob_user.id, role="admin")
        for who in ("alice", "bob", "guest"):
            for method, path in (
                ("GET", "/api/users"),
                ("POST", "/api/users"),
                ("PATCH", f"/api/users/{self.alice_user.id}"),
                ("DELETE", f"/api/users/{self.alice_user.id}"),
                ("GET", f"/api/users/{self.alice_user.id}/mailboxes"),
                ("POST", "/api/users/assign"),
                ("POST", "/api/users/unassign"),
            ):
                reply = await self.call(
                    method, path, who=who, json={"username": "x", "password": "y"}
                )
                self.assertError(reply, 403)
        self.assertIsNotNone(await self.store.freemail.user(self.alice_user.id))
