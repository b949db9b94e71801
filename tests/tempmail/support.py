"""The temp-mail API in memory: the real ``http`` Site (admin + temp-mail surfaces) over a
real store, treq's StubTreq, a task.Clock, temp-mail domains and two API keys."""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.internet import task

from a3mail.auth import apikeys
from a3mail.config import load_config
from a3mail.http.factory import build_site
from a3mail.mime.parse import parse_message
from a3mail.runtime import Runtime
from tests.http.support import BASE, START, Reply
from tests.support.store import StoreTestCase
from tests.support.stubtreq import settle

DOMAIN = "temp.example"
OTHER_DOMAIN = "drop.example"


async def deliver_as_smtp(store: Any, address: str, message: bytes) -> None:
    """Deliver *message* to *address* through *store* as SMTP would (parsed, to JSON)."""
    blob = await store.incoming(message)
    results = await store.messages.deliver(
        blob, [address], parse=lambda data: parse_message(data).to_json()
    )
    assert all(r.status.name == "DELIVERED" for r in results), results


class TempmailTestCase(StoreTestCase):
    """``self.call(method, path, key=...)``; ``self.alice`` and ``self.bob`` are tokens of
    two write keys, ``self.reader`` of a read-only key."""

    overrides: dict[str, Any] = {}

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.config = load_config(None, data_dir=self.data_dir, overrides=self.overrides)
        self.runtime = Runtime(self.config, self.store, object(), reactor=self.clock)
        self.site = build_site(self.runtime, self.clock)
        self.http = StubTreq(self.site.resource)
        self.http._agent._serverFactory = self.site
        for name in (DOMAIN, OTHER_DOMAIN):
            await self.store.domains.add(name)
            await self.store.tempmail.set_domain(name, True)
        await self.store.domains.add("plain.example")  # not a temp-mail domain
        self.alice = await self.make_key(["read", "write"], "alice")
        self.bob = await self.make_key(["read", "write"], "bob")
        self.reader = await self.make_key(["read"], "reader")

    async def make_key(self, permissions: list[str], name: str) -> str:
        """A new API key's mk_live_ token."""
        new, _ = await apikeys.issue(
            self.store, account_id=None, name=name, permissions=permissions
        )
        return new.key

    async def settle(self, d: Any) -> Any:
        """Pump the in-memory connection until *d* fires."""
        return await settle(self.http, d)

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "alice",
        json: Any = None,
        data: bytes | None = None,
    ) -> Reply:
        """One request with ``X-API-Key`` (*key*: "alice", "bob", "reader", a token, None)."""
        headers: dict[str, list[str]] = {}
        if key is not None:
            token = {"alice": self.alice, "bob": self.bob, "reader": self.reader}.get(key, key)
            headers["X-API-Key"] = [token]
        kwargs: dict[str, Any] = {"headers": headers}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        response = await self.settle(self.http.request(method, BASE + path, **kwargs))
        body = await self.settle(self.http.content(response))
        return Reply(response.code, response.headers, body)

    async def generate(self, key: str = "alice", **fields: Any) -> dict[str, Any]:
        """Create a temp address through the API (201-less: the spec answers 200)."""
        body = {"expiryTime": 3600000, "domain": DOMAIN, **fields}
        reply = await self.call("POST", "/api/emails/generate", key=key, json=body)
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json
        return result

    def assertApiError(self, reply: Reply, status: int) -> str:
        """*reply* is ``{"error": "..."}`` with *status*; returns the message."""
        self.assertEqual(reply.status, status, reply.body[:300])
        self.assertEqual(reply.header("content-type"), "application/json")
        body = reply.json
        self.assertEqual(list(body), ["error"])
        self.assertIsInstance(body["error"], str)
        return str(body["error"])

    async def deliver(self, address: str, message: bytes) -> None:
        """Deliver *message* to *address* as SMTP would (through the store)."""
        await deliver_as_smtp(self.store, address, message)
