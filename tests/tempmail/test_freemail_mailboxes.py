"""Freemail mailbox endpoints in memory, per role: domains, generate/create and the
mailbox limit, listing and its filters, delete, quota, pin, favourite, forward (a real
alias, so SMTP delivery queues the forward), passwords, logins, the strict-admin batches,
and one user never reaching another user's mailboxes."""

from __future__ import annotations

from tests.tempmail.freemail_support import (
    CODE_MAIL,
    DOMAIN,
    OTHER_DOMAIN,
    FreemailTestCase,
    session_cookie,
)


class DomainAndCreateTests(FreemailTestCase):
    async def test_domains_are_the_temp_mail_domains(self):
        reply = await self.call("GET", "/api/domains")
        self.assertEqual(reply.json, [OTHER_DOMAIN, DOMAIN])

    async def test_generate_makes_a_random_mailbox_of_the_chosen_domain(self):
        reply = await self.call("GET", "/api/generate?length=12&domainIndex=1")
        self.assertEqual(reply.status, 200, reply.body)
        local, _, domain = reply.json["email"].partition("@")
        self.assertEqual((len(local), domain), (12, DOMAIN))
        self.assertIsNone(reply.json["expires"])
        box = await self.store.freemail.mailbox(address=reply.json["email"])
        self.assertIsNotNone(box)
        self.assertEqual(
            await self.store.freemail.owned(self.alice_user.id, [box.account_id]), {box.account_id}
        )

    async def test_create_uses_the_given_local_part(self):
        body = await self.create("My.Name", index=0)
        self.assertEqual(body["email"], f"my.name@{OTHER_DOMAIN}")

    async def test_a_taken_or_invalid_address_is_refused(self):
        await self.create("taken")
        reply = await self.call("POST", "/api/create", json={"local": "taken", "domainIndex": 0})
        self.assertError(reply, 409)
        for local in ("bad..dots", "sp ace", "", "x" * 65):
            reply = await self.call("POST", "/api/create", json={"local": local})
            self.assertError(reply, 400)
        reply = await self.call("POST", "/api/create", json={"local": "ok", "domainIndex": 9})
        self.assertError(reply, 400)

    async def test_the_mailbox_limit_is_enforced_for_generate_and_create(self):
        for n in range(3):
            await self.create(f"box{n}")
        self.assertError(await self.call("GET", "/api/generate"), 403)
        self.assertError(await self.call("POST", "/api/create", json={"local": "more"}), 403)
        quota = await self.call("GET", "/api/user/quota")
        self.assertEqual(quota.json, {"limit": 3, "used": 3, "remaining": 0})

    async def test_admins_have_no_limit(self):
        for n in range(5):
            await self.create(f"adm{n}", who="root")
        quota = await self.call("GET", "/api/user/quota", who="admin")
        self.assertEqual((quota.json["limit"], quota.json["used"]), (-1, 5))


class ConfiguredDomainTests(FreemailTestCase):
    overrides = {"freemail": {"domains": [DOMAIN]}}

    async def test_configured_domains_override_the_temp_mail_domains(self):
        reply = await self.call("GET", "/api/domains")
        self.assertEqual(reply.json, [DOMAIN])
        body = await self.create("conf", index=0)
        self.assertEqual(body["email"], f"conf@{DOMAIN}")


class ListTests(FreemailTestCase):
    async def test_a_user_lists_only_its_own_mailboxes(self):
        mine = await self.create("mine")
        await self.create("theirs", who="bob")
        reply = await self.call("GET", "/api/mailboxes")
        self.assertEqual([b["address"] for b in reply.json], [mine["email"]])
        [entry] = reply.json
        self.assertEqual(
            set(entry),
            {
                "id",
                "address",
                "created_at",
                "is_pinned",
                "password_is_default",
                "can_login",
                "forward_to",
                "is_favorite",
                "expires_at",
            },
        )
        self.assertEqual((entry["is_pinned"], entry["password_is_default"]), (0, 1))

    async def test_an_admin_lists_every_mailbox(self):
        await self.create("one")
        await self.create("two", who="bob")
        reply = await self.call("GET", "/api/mailboxes", who="admin")
        self.assertEqual(len(reply.json), 2)

    async def test_filters_limit_and_offset(self):
        a = await self.create("a1", index=0)
        b = await self.create("b1", index=1)
        await self.call(
            "POST", "/api/mailbox/favorite", json={"mailbox_id": b["id"], "is_favorite": True}
        )
        await self.call(
            "POST",
            "/api/mailbox/forward",
            json={"mailbox_id": a["id"], "forward_to": "x@remote.example"},
        )

        async def listed(query: str) -> list[str]:
            reply = await self.call("GET", "/api/mailboxes" + query)
            self.assertEqual(reply.status, 200, reply.body)
            return [m["address"] for m in reply.json]

        self.assertEqual(await listed(f"?domain={DOMAIN}"), [b["email"]])
        self.assertEqual(await listed("?favorite=true"), [b["email"]])
        self.assertEqual(await listed("?favorite=false"), [a["email"]])
        self.assertEqual(await listed("?forward=1"), [a["email"]])
        self.assertEqual(await listed("?limit=1"), [b["email"]])
        self.assertEqual(await listed("?limit=1&offset=1"), [a["email"]])
        self.assertError(await self.call("GET", "/api/mailboxes?limit=abc"), 400)

    async def test_pinned_mailboxes_come_first_and_pins_are_per_user(self):
        a = await self.create("first")
        await self.create("second")
        reply = await self.call("POST", "/api/mailboxes/pin", json={"address": a["email"]})
        self.assertEqual(reply.json, {"success": True, "pinned": True})
        listed = (await self.call("GET", "/api/mailboxes")).json
        self.assertEqual((listed[0]["address"], listed[0]["is_pinned"]), (a["email"], 1))
        admin_view = (await self.call("GET", "/api/mailboxes", who="admin")).json
        self.assertEqual({m["is_pinned"] for m in admin_view}, {0})
        reply = await self.call("POST", f"/api/mailboxes/pin?address={a['email']}")
        self.assertEqual(reply.json["pinned"], False)


class DeleteTests(FreemailTestCase):
    async def test_deleting_removes_the_account_and_its_mail(self):
        box = await self.create("gone")
        await self.deliver(box["email"], CODE_MAIL.replace(b"{to}", box["email"].encode()))
        reply = await self.call("DELETE", f"/api/mailboxes?address={box['email']}")
        self.assertEqual(reply.json, {"success": True, "deleted": True})
        self.assertIsNone(await self.store.accounts.find(box["email"]))
        self.assertIsNone(await self.store.freemail.mailbox(address=box["email"]))

    async def test_a_shared_mailbox_is_only_given_up(self):
        box = await self.create("shared")
        await self.store.freemail.assign(self.bob_user.id, box["id"])
        reply = await self.call("DELETE", f"/api/mailboxes?address={box['email']}")
        self.assertEqual(reply.json, {"success": True, "deleted": False})
        self.assertIsNotNone(await self.store.accounts.find(box["email"]))
        listed = await self.call("GET", "/api/mailboxes", who="bob")
        self.assertEqual([m["address"] for m in listed.json], [box["email"]])


class IsolationTests(FreemailTestCase):
    """Bob tries every mailbox endpoint on alice's mailbox: each answers 404 (as for a
    mailbox that does not exist) and nothing changes."""

    async def test_bob_cannot_touch_alices_mailbox(self):
        box = await self.create("private")
        address, number = box["email"], box["id"]
        attempts = [
            ("POST", "/api/mailboxes/pin", {"address": address}),
            ("POST", "/api/mailbox/favorite", {"mailbox_id": number, "is_favorite": True}),
            (
                "POST",
                "/api/mailbox/forward",
                {"mailbox_id": number, "forward_to": "b@evil.example"},
            ),
        ]
        for method, path, body in attempts:
            self.assertError(await self.call(method, path, who="bob", json=body), 404)
        self.assertError(
            await self.call("DELETE", f"/api/mailboxes?address={address}", who="bob"), 404
        )
        self.assertError(await self.call("GET", f"/api/emails?mailbox={address}", who="bob"), 404)
        after = await self.store.freemail.mailbox(address=address)
        self.assertEqual((after.is_favorite, after.forward_to), (False, None))
        self.assertEqual(await self.store.accounts.aliases(), [])

    async def test_strict_admin_endpoints_are_403_for_users_and_admins(self):
        box = await self.create("target")
        await self.store.freemail.update_user(self.bob_user.id, role="admin")
        for who in ("alice", "bob"):
            for path, body in (
                ("/api/mailboxes/reset-password", {"address": box["email"]}),
                ("/api/mailboxes/toggle-login", {"address": box["email"], "can_login": True}),
                ("/api/mailboxes/change-password", {"address": box["email"], "new_password": "p"}),
                (
                    "/api/mailboxes/batch-toggle-login",
                    {"addresses": [box["email"]], "can_login": True},
                ),
                (
                    "/api/mailboxes/batch-favorite",
                    {"mailbox_ids": [box["id"]], "is_favorite": True},
                ),
                (
                    "/api/mailboxes/batch-forward",
                    {"mailbox_ids": [box["id"]], "forward_to": "a@b.example"},
                ),
                (
                    "/api/mailboxes/batch-favorite-by-address",
                    {"addresses": [box["email"]], "is_favorite": True},
                ),
                (
                    "/api/mailboxes/batch-forward-by-address",
                    {"addresses": [box["email"]], "forward_to": "a@b.example"},
                ),
            ):
                self.assertError(await self.call("POST", path, who=who, json=body), 403)

    async def test_a_mailbox_login_sees_only_itself_and_manages_nothing(self):
        box = await self.create("self")
        other = await self.create("other")
        await self.store.freemail.set_flag([box["id"]], "can_login", True)
        cookie = session_cookie(await self.login(box["email"], box["email"]))
        listed = await self.call("GET", "/api/mailboxes", who=cookie)
        self.assertEqual([m["address"] for m in listed.json], [box["email"]])
        self.assertError(
            await self.call("GET", f"/api/emails?mailbox={other['email']}", who=cookie), 404
        )
        self.assertError(await self.call("GET", "/api/generate", who=cookie), 403)
        self.assertError(
            await self.call(
                "POST",
                "/api/mailbox/favorite",
                who=cookie,
                json={"mailbox_id": box["id"], "is_favorite": True},
            ),
            403,
        )


class SettingsTests(FreemailTestCase):
    async def test_favorite_sets_and_clears(self):
        box = await self.create("fav")
        for value in (True, False):
            reply = await self.call(
                "POST",
                "/api/mailbox/favorite",
                json={"mailbox_id": box["id"], "is_favorite": value},
            )
            self.assertEqual(reply.json, {"success": True})
            self.assertEqual(
                (await self.store.freemail.mailbox(address=box["email"])).is_favorite, value
            )

    async def test_forward_is_an_alias_and_incoming_mail_is_queued_to_it(self):
        box = await self.create("fwd")
        reply = await self.call(
            "POST",
            "/api/mailbox/forward",
            json={"mailbox_id": box["id"], "forward_to": "Backup@Gmail.example"},
        )
        self.assertEqual(reply.json, {"success": True})
        self.assertEqual(
            await self.store.accounts.aliases(), [(box["email"], "backup@gmail.example")]
        )
        check = await self.store.recipients.check(box["email"])
        self.assertEqual(
            (check.account_ids, check.external), ((box["id"],), ("backup@gmail.example",))
        )
        resolution = await self.store.accounts.resolve(box["email"])
        self.assertEqual(resolution.external, ("backup@gmail.example",))
        # changing the target replaces the alias; clearing removes it
        await self.call(
            "POST",
            "/api/mailbox/forward",
            json={"mailbox_id": box["id"], "forward_to": "new@x.example"},
        )
        self.assertEqual(await self.store.accounts.aliases(), [(box["email"], "new@x.example")])
        await self.call(
            "POST", "/api/mailbox/forward", json={"mailbox_id": box["id"], "forward_to": ""}
        )
        self.assertEqual(await self.store.accounts.aliases(), [])
        self.assertIsNone((await self.store.freemail.mailbox(address=box["email"])).forward_to)

    async def test_forward_refuses_a_bad_target(self):
        box = await self.create("fwd2")
        for target in ("not-an-address", box["email"], "a@b..example", "x" * 400 + "@a.example"):
            reply = await self.call(
                "POST", "/api/mailbox/forward", json={"mailbox_id": box["id"], "forward_to": target}
            )
            self.assertError(reply, 400)

    async def test_strict_admin_sets_resets_and_the_mailbox_changes_its_password(self):
        box = await self.create("pw")
        address = box["email"]
        await self.call(
            "POST",
            "/api/mailboxes/toggle-login",
            who="root",
            json={"address": address, "can_login": True},
        )
        reply = await self.call(
            "POST",
            "/api/mailboxes/change-password",
            who="root",
            json={"address": address, "new_password": "secret1"},
        )
        self.assertEqual(reply.json, {"success": True})
        self.assertError(await self.login(address, address), 401)
        cookie = session_cookie(await self.login(address, "secret1"))
        listed = await self.call("GET", "/api/mailboxes", who=cookie)
        self.assertEqual(listed.json[0]["password_is_default"], 0)
        reply = await self.call(
            "PUT",
            "/api/mailbox/password",
            who=cookie,
            json={"currentPassword": "wrong", "newPassword": "secret2"},
        )
        self.assertError(reply, 400)
        reply = await self.call(
            "PUT",
            "/api/mailbox/password",
            who=cookie,
            json={"currentPassword": "secret1", "newPassword": "secret2"},
        )
        self.assertEqual(reply.json["success"], True)
        self.assertEqual((await self.login(address, "secret2")).status, 200)
        await self.call(
            "POST", "/api/mailboxes/reset-password", who="root", json={"address": address}
        )
        self.assertEqual((await self.login(address, address)).status, 200)
        self.assertError(
            await self.call(
                "PUT",
                "/api/mailbox/password",
                json={"currentPassword": "a", "newPassword": "bbbbbb"},
            ),
            403,
        )


class BatchTests(FreemailTestCase):
    async def test_batch_toggle_login_reports_each_address(self):
        a = await self.create("ba")
        reply = await self.call(
            "POST",
            "/api/mailboxes/batch-toggle-login",
            who="root",
            json={"addresses": [a["email"], f"none@{DOMAIN}"], "can_login": True},
        )
        self.assertEqual(
            reply.json,
            {
                "success": True,
                "success_count": 1,
                "fail_count": 1,
                "total": 2,
                "results": [
                    {"address": a["email"], "success": True, "updated": True},
                    {"address": f"none@{DOMAIN}", "success": False, "error": "mailbox not found"},
                ],
            },
        )
        self.assertTrue((await self.store.freemail.mailbox(address=a["email"])).can_login)

    async def test_batch_favorite_and_forward_by_id_and_by_address(self):
        a = await self.create("b1")
        b = await self.create("b2")
        ids = [a["id"], b["id"]]
        reply = await self.call(
            "POST",
            "/api/mailboxes/batch-favorite",
            who="root",
            json={"mailbox_ids": ids, "is_favorite": True},
        )
        self.assertEqual(reply.json["success_count"], 2)
        reply = await self.call(
            "POST",
            "/api/mailboxes/batch-forward",
            who="root",
            json={"mailbox_ids": ids, "forward_to": "all@remote.example"},
        )
        self.assertEqual(reply.json["success_count"], 2)
        self.assertEqual(len(await self.store.accounts.aliases()), 2)
        addresses = [a["email"], b["email"]]
        await self.call(
            "POST",
            "/api/mailboxes/batch-favorite-by-address",
            who="root",
            json={"addresses": addresses, "is_favorite": False},
        )
        await self.call(
            "POST",
            "/api/mailboxes/batch-forward-by-address",
            who="root",
            json={"addresses": addresses, "forward_to": None},
        )
        for box in (a, b):
            found = await self.store.freemail.mailbox(address=box["email"])
            self.assertEqual((found.is_favorite, found.forward_to), (False, None))
        self.assertEqual(await self.store.accounts.aliases(), [])

    async def test_batch_sizes_are_limited(self):
        reply = await self.call(
            "POST",
            "/api/mailboxes/batch-favorite",
            who="root",
            json={"mailbox_ids": list(range(1, 102)), "is_favorite": True},
        )
        self.assertError(reply, 400)
        reply = await self.call(
            "POST",
            "/api/mailboxes/batch-toggle-login",
            who="root",
            json={"addresses": [], "can_login": True},
        )
        self.assertError(reply, 400)


class GuestTests(FreemailTestCase):
    async def test_guest_reads_demo_data_and_changes_nothing(self):
        await self.create("real")
        listed = await self.call("GET", "/api/mailboxes", who="guest")
        self.assertEqual(len(listed.json), 3)
        self.assertTrue(all(m["address"].startswith("demo") for m in listed.json))
        generated = await self.call("GET", "/api/generate", who="guest")
        self.assertIsNone(await self.store.freemail.mailbox(address=generated.json["email"]))
        self.assertEqual((await self.call("GET", "/api/user/quota", who="guest")).json["limit"], 10)
        for method, path in (
            ("POST", "/api/create"),
            ("DELETE", "/api/mailboxes?address=x@y.z"),
            ("POST", "/api/mailbox/forward"),
            ("POST", "/api/mailboxes/pin"),
        ):
            self.assertError(await self.call(method, path, who="guest", json={}), 403)
        self.assertEqual(await self.store.freemail.count(None), 1)
