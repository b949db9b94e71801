"""Freemail sessions in memory: each login kind, the cookie, logout, the session, the root
token in its three places, expiry, tampering, and what a session is worth once its user is
gone."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial.unittest import TestCase

from a3mail.http.freemail.sessions import SECRET_FILE, SessionSigner, load_secret
from tests.tempmail.freemail_support import (
    ADMIN_PASSWORD,
    COOKIE,
    ROOT_TOKEN,
    FreemailTestCase,
    session_cookie,
)


class LoginTests(FreemailTestCase):
    async def test_the_configured_admin_logs_in_as_strict_admin(self):
        reply = await self.login("admin", ADMIN_PASSWORD)
        self.assertEqual(reply.status, 200)
        self.assertEqual(
            reply.json, {"success": True, "role": "admin", "can_send": 1, "mailbox_limit": 9999}
        )
        session = await self.call("GET", "/api/session", who=session_cookie(reply))
        self.assertEqual(
            session.json,
            {
                "authenticated": True,
                "role": "admin",
                "username": "admin",
                "strictAdmin": True,
                "can_send": 1,
            },
        )

    async def test_the_cookie_is_http_only_and_signed(self):
        reply = await self.login("alice", "alicepw")
        [cookie] = reply.headers.getRawHeaders("set-cookie")
        self.assertTrue(cookie.startswith(f"{COOKIE}="))
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertIn("Max-Age=604800", cookie)
        token = session_cookie(reply)
        payload, _, signature = token.partition(".")
        self.assertTrue(payload and signature)

    async def test_a_user_logs_in_with_its_role_and_limits(self):
        reply = await self.login("alice", "alicepw")
        self.assertEqual(
            reply.json, {"success": True, "role": "user", "can_send": 1, "mailbox_limit": 3}
        )
        session = await self.call("GET", "/api/session", who="alice")
        self.assertEqual(session.json["username"], "alice")
        self.assertFalse(session.json["strictAdmin"])

    async def test_a_wrong_password_is_401_and_sets_no_cookie(self):
        for username, password in (("alice", "nope"), ("admin", "nope"), ("nobody", "x")):
            reply = await self.login(username, password)
            self.assertEqual(self.assertError(reply, 401), "invalid username or password")
            self.assertIsNone(reply.headers.getRawHeaders("set-cookie"))

    async def test_missing_credentials_are_400(self):
        reply = await self.call("POST", "/api/login", who=None, json={"username": "alice"})
        self.assertError(reply, 400)
        reply = await self.call("POST", "/api/login", who=None, data=b"not json")
        self.assertError(reply, 400)

    async def test_guest_logs_in_with_the_guest_password(self):
        reply = await self.login("guest", "guestpw")
        self.assertEqual(reply.json["role"], "guest")
        self.assertError(await self.login("guest", "wrong"), 401)

    async def test_a_mailbox_logs_in_only_when_its_login_is_on(self):
        box = await self.create("inbox1")
        self.assertError(await self.login(box["email"], box["email"]), 401)
        reply = await self.call(
            "POST",
            "/api/mailboxes/toggle-login",
            who="root",
            json={"address": box["email"], "can_login": True},
        )
        self.assertEqual(reply.json, {"success": True, "can_login": True})
        reply = await self.login(box["email"], box["email"])  # the default password
        self.assertEqual(reply.json["role"], "mailbox")
        session = await self.call("GET", "/api/session", who=session_cookie(reply))
        self.assertEqual(session.json["mailboxAddress"], box["email"])

    async def test_logout_clears_the_cookie(self):
        reply = await self.call("POST", "/api/logout", who="alice")
        self.assertEqual(reply.json, {"success": True})
        [cookie] = reply.headers.getRawHeaders("set-cookie")
        self.assertTrue(cookie.startswith(f"{COOKIE}=;"))
        self.assertIn("Max-Age=0", cookie)


class SessionTests(FreemailTestCase):
    async def test_no_session_is_401(self):
        reply = await self.call("GET", "/api/session", who=None)
        self.assertEqual(reply.status, 401)
        self.assertEqual(reply.json["authenticated"], False)
        self.assertError(await self.call("GET", "/api/mailboxes", who=None), 401)

    async def test_the_root_token_works_in_all_three_places(self):
        for headers, query in (
            ({"Authorization": [f"Bearer {ROOT_TOKEN}"]}, ""),
            ({"X-Admin-Token": [ROOT_TOKEN]}, ""),
            ({}, f"?admin_token={ROOT_TOKEN}"),
        ):
            reply = await self.call("GET", "/api/session" + query, who=None, headers=headers)
            self.assertEqual(reply.status, 200, reply.body)
            self.assertEqual(reply.json["username"], "__root__")
            self.assertTrue(reply.json["strictAdmin"])

    async def test_a_wrong_root_token_is_not_accepted(self):
        for headers in ({"X-Admin-Token": [ROOT_TOKEN + "x"]}, {"Authorization": ["Bearer x"]}):
            reply = await self.call("GET", "/api/mailboxes", who=None, headers=headers)
            self.assertError(reply, 401)

    async def test_a_session_expires(self):
        cookie = await self.cookie_of("alice")
        self.clock.advance(7 * 86400 - 1)
        self.assertEqual((await self.call("GET", "/api/session", who=cookie)).status, 200)
        self.clock.advance(2)
        self.assertEqual((await self.call("GET", "/api/session", who=cookie)).status, 401)

    async def test_a_tampered_cookie_is_refused(self):
        cookie = await self.cookie_of("alice")
        payload, _, signature = cookie.partition(".")
        forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
        for bad in (forged, "garbage", cookie + "x", "a.b.c"):
            self.assertEqual((await self.call("GET", "/api/session", who=bad)).status, 401)

    async def test_the_session_bearer_works_for_scripts(self):
        cookie = await self.cookie_of("alice")
        reply = await self.call(
            "GET", "/api/session", who=None, headers={"Authorization": [f"Bearer {cookie}"]}
        )
        self.assertEqual(reply.json["username"], "alice")

    async def test_a_deleted_users_session_ends(self):
        cookie = await self.cookie_of("bob")
        await self.store.freemail.delete_user(self.bob_user.id)
        self.assertEqual((await self.call("GET", "/api/session", who=cookie)).status, 401)

    async def test_a_role_change_applies_to_open_sessions(self):
        cookie = await self.cookie_of("bob")
        await self.store.freemail.update_user(self.bob_user.id, role="admin")
        reply = await self.call("GET", "/api/session", who=cookie)
        self.assertEqual(reply.json["role"], "admin")
        self.assertFalse(reply.json["strictAdmin"])

    async def test_a_mailbox_session_ends_when_its_login_is_turned_off(self):
        box = await self.create("inbox2")
        await self.store.freemail.set_flag([box["id"]], "can_login", True)
        reply = await self.login(box["email"], box["email"])
        cookie = session_cookie(reply)
        await self.store.freemail.set_flag([box["id"]], "can_login", False)
        self.assertEqual((await self.call("GET", "/api/session", who=cookie)).status, 401)


class GuestDisabledTests(FreemailTestCase):
    overrides = {"freemail": {"guest_enabled": False}}

    async def test_guest_cannot_log_in_when_disabled(self):
        self.assertError(await self.login("guest", "guestpw"), 401)


class UnknownPathTests(FreemailTestCase):
    async def test_unknown_paths_and_methods_answer_in_the_error_format(self):
        self.assertError(await self.call("GET", "/api/nothing"), 404)
        self.assertError(await self.call("PUT", "/api/domains"), 405)


class SecretTests(TestCase):
    def test_the_session_key_is_generated_once_and_kept_private(self):
        data_dir = Path(self.mktemp())
        first = load_secret("", data_dir)
        self.assertEqual(len(first), 32)
        self.assertEqual(load_secret("", data_dir), first)
        self.assertEqual(os.stat(data_dir / SECRET_FILE).st_mode & 0o777, 0o600)
        self.assertEqual(load_secret("configured", data_dir), b"configured")

    def test_tokens_signed_with_another_key_are_refused(self):
        token = SessionSigner(b"one", 60).issue({"r": "guest"}, 1000)
        self.assertEqual(SessionSigner(b"one", 60).verify(token, 1001)["r"], "guest")
        self.assertIsNone(SessionSigner(b"two", 60).verify(token, 1001))
        self.assertIsNone(SessionSigner(b"one", 60).verify(token, 1060))


class RateLimitTests(FreemailTestCase):
    overrides = {"http": {"rate_limit_per_ip": 3, "rate_limit_per_key": 5}}

    async def test_login_attempts_are_limited_per_address_even_with_the_right_password(self):
        for _ in range(3):
            self.assertError(await self.login("alice", "wrong"), 401)
        reply = await self.login("alice", "alicepw")
        self.assertIn("rate limit", self.assertError(reply, 429))
        self.assertIsNone(reply.headers.getRawHeaders("set-cookie"))
        self.assertEqual(reply.header("x-ratelimit-limit"), "3")
        self.assertIsNotNone(reply.header("retry-after"))
        self.clock.advance(3600)  # the next window
        self.assertEqual((await self.login("alice", "alicepw")).status, 200)

    async def test_requests_are_limited_per_logged_in_user(self):
        for _ in range(5):
            self.assertEqual((await self.call("GET", "/api/domains", who="root")).status, 200)
        self.assertError(await self.call("GET", "/api/domains", who="root"), 429)
        self.assertEqual((await self.call("GET", "/api/session", who="bob")).status, 200)
