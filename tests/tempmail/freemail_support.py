"""The freemail API in memory: the real ``freemail`` Site over a real store, treq's
StubTreq, a task.Clock, fast password functions, two temp-mail domains, users alice and
bob, the configured admin, a root token and an enabled guest."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from treq.client import HTTPClient
from treq.testing import StubTreq, _SynchronousProducer
from twisted.internet import task

from a3mail.config import load_config
from a3mail.http.freemail.site import build_site
from a3mail.runtime import Runtime
from tests.http.support import BASE, START, Reply
from tests.support.store import StoreTestCase
from tests.support.stubtreq import settle
from tests.tempmail.support import deliver_as_smtp

DOMAIN = "temp.example"
OTHER_DOMAIN = "drop.example"
ROOT_TOKEN = "root-token-0123456789"
ADMIN_PASSWORD = "admin-password"
COOKIE = "iding-token"

CODE_MAIL = (
    b"From: Service <noreply@service.example>\r\nTo: {to}\r\n"
    b"Subject: Your verification code\r\nMessage-ID: <1@service.example>\r\n\r\n"
    b"Your verification code is 482913. It expires in 10 minutes.\r\n"
)


async def fast_hash(password: str) -> str:
    """Stand-in for argon2id (tests only)."""
    return "fake$" + password


async def fast_verify(stored: str | None, password: str) -> bool:
    """Checks :func:`fast_hash` hashes."""
    return stored is not None and stored == "fake$" + password


class FreemailTestCase(StoreTestCase):
    """``self.call(method, path, who=...)``; *who* is "root" (the root token), "admin"
    (the configured admin's session), "alice"/"bob" (users' sessions), "guest", a raw
    cookie value, or None."""

    overrides: dict[str, Any] = {}

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)
        overrides = {
            "hostname": "mx.test",
            "auth": {"failure_delay": 0},
            "freemail": {
                "admin_token": ROOT_TOKEN,
                "admin_password": ADMIN_PASSWORD,
                "guest_enabled": True,
                "guest_password": "guestpw",
                "session_secret": "test-session-secret",
                "mailbox_limit": 3,
            },
        }
        for key, value in self.overrides.items():
            if isinstance(value, dict):
                overrides.setdefault(key, {}).update(value)  # type: ignore[attr-defined]
            else:
                overrides[key] = value
        self.config = load_config(None, data_dir=self.data_dir, overrides=overrides)
        self.runtime = Runtime(self.config, self.store, object(), reactor=self.clock)
        self.site = build_site(
            self.runtime, self.clock, hash_password=fast_hash, verify_password=fast_verify
        )
        self.http = StubTreq(self.site.resource)
        self.http._agent._serverFactory = self.site
        for name in (DOMAIN, OTHER_DOMAIN):
            await self.store.domains.add(name)
            await self.store.tempmail.set_domain(name, True)
        self.alice_user = await self.store.freemail.add_user(
            "alice", await fast_hash("alicepw"), mailbox_limit=3, can_send=True
        )
        self.bob_user = await self.store.freemail.add_user(
            "bob", await fast_hash("bobpw"), mailbox_limit=3
        )
        self.cookies: dict[str, str] = {}

    async def settle(self, d: Any) -> Any:
        """Pump the in-memory connection until *d* fires."""
        return await settle(self.http, d)

    async def login(self, username: str, password: str) -> Reply:
        """``POST /api/login``."""
        return await self.call(
            "POST", "/api/login", who=None, json={"username": username, "password": password}
        )

    async def cookie_of(self, who: str) -> str:
        """The session cookie of alice, bob, admin or guest (logging in once)."""
        if who not in self.cookies:
            password = {
                "alice": "alicepw",
                "bob": "bobpw",
                "admin": ADMIN_PASSWORD,
                "guest": "guestpw",
            }[who]
            reply = await self.login(who, password)
            assert reply.status == 200, reply.body
            self.cookies[who] = session_cookie(reply)
        return self.cookies[who]

    async def call(
        self,
        method: str,
        path: str,
        *,
        who: str | None = "alice",
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, list[str]] | None = None,
    ) -> Reply:
        """One request as *who*."""
        sent: dict[str, list[str]] = dict(headers or {})
        if who == "root":
            sent["X-Admin-Token"] = [ROOT_TOKEN]
        elif who in ("alice", "bob", "admin", "guest"):
            sent["Cookie"] = [f"{COOKIE}={await self.cookie_of(who)}"]
        elif who is not None:
            sent["Cookie"] = [f"{COOKIE}={who}"]
        kwargs: dict[str, Any] = {"headers": sent}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        # a fresh client (no cookie jar carried over): each call says who it is
        client = HTTPClient(agent=self.http._agent, data_to_body_producer=_SynchronousProducer)
        response = await self.settle(client.request(method, BASE + path, **kwargs))
        body = await self.settle(self.http.content(response))
        return Reply(response.code, response.headers, body)

    async def create(self, local: str, who: str = "alice", index: int = 0) -> dict[str, Any]:
        """``POST /api/create``; returns the body."""
        reply = await self.call(
            "POST", "/api/create", who=who, json={"local": local, "domainIndex": index}
        )
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    async def deliver(self, address: str, message: bytes) -> None:
        """Deliver *message* to *address* as SMTP would (through the store)."""
        await deliver_as_smtp(self.store, address, message)

    async def message_ids(self, address: str, who: str = "alice") -> list[int]:
        """The ids ``GET /api/emails`` lists for *address*."""
        reply = await self.call("GET", f"/api/emails?mailbox={address}", who=who)
        assert reply.status == 200, reply.body
        return [m["id"] for m in reply.json]

    def assertError(self, reply: Reply, status: int) -> str:
        """*reply* is ``{"error": "..."}`` with *status*; returns the message."""
        self.assertEqual(reply.status, status, reply.body[:300])
        self.assertEqual(reply.header("content-type"), "application/json")
        self.assertIsInstance(reply.json["error"], str)
        return str(reply.json["error"])


def session_cookie(reply: Reply) -> str:
    """The session token a login reply sets."""
    jar: SimpleCookie = SimpleCookie()
    for value in reply.headers.getRawHeaders("set-cookie") or []:
        jar.load(value)
    return jar[COOKIE].value
