"""The admin API in memory: a real store, treq's StubTreq, a task.Clock, and three API keys."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import attrs
from treq.testing import StubTreq
from twisted.internet import task
from twisted.internet.defer import Deferred

from a3mail.auth import apikeys, passwords
from a3mail.config import load_config
from a3mail.http.admin.api import GROUPS, build_router
from a3mail.http.admin.context import AdminContext
from a3mail.http.ratelimit import RateLimiter
from a3mail.http.request import ApiSite
from a3mail.http.surfaces import HttpRoot, Surface
from a3mail.runtime import Runtime
from a3mail.tls import ServerTLS
from tests.support.store import StoreTestCase
from tests.support.stubtreq import settle

BASE = "http://a3mail.test"
START = 1_700_000_000.0  # the test clock's start: 2023-11-14T22:13:20Z


def fast_hash(password: str) -> str:
    """Stand-in for argon2 in tests that do not log in (argon2 costs ~0.1 s per hash)."""
    return "fake$" + password


@attrs.frozen
class Reply:
    """An HTTP response as the tests look at it."""

    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """One response header (None if absent)."""
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


class ApiTestCase(StoreTestCase):
    """``self.call(method, path, key=..., json=...)`` against the admin API in memory.

    ``self.admin``, ``self.writer`` and ``self.reader`` are tokens of keys with the
    permissions admin, write and read.
    """

    overrides: dict[str, Any] = {}
    groups: tuple[type, ...] = GROUPS
    hash_passwords = False

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        if not self.hash_passwords:
            self.patch(passwords, "hash_password", fast_hash)
        self.clock = task.Clock()
        self.clock.advance(START)
        self.config = load_config(None, data_dir=self.data_dir, overrides=self.overrides)
        self.ctx = AdminContext(self.store, self.clock, self.runtime(), lambda: self.config)
        self.limiter = RateLimiter(
            self.store.ratelimits, self.clock, window=self.config.http.rate_limit_window
        )
        self.router = build_router(self.ctx, self.limiter, self.groups)
        admin = Surface("admin", ("/api/v1",), self.router)
        self.root = HttpRoot([admin], fallback=admin)
        self.site = ApiSite(
            self.root, max_body=self.config.http.max_body, clock=self.clock, timeout=60
        )
        self.http = self.stub()
        self.admin = await self.make_key(["read", "write", "admin"], name="admin")
        self.writer = await self.make_key(["read", "write"], name="writer")
        self.reader = await self.make_key(["read"], name="reader")

    def runtime(self) -> Any:
        """The runtime handed to the API (None: no server facts needed)."""
        return None

    def live_runtime(self, extra: str = "") -> Runtime:
        """A runtime over the test store with a configuration file (``self.config_file``)
        and a generated certificate, started 90 s ago; kept as ``self.live``."""
        self.config_file = Path(self.mktemp()).absolute()
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            f'data_dir = "{self.data_dir}"\nhostname = "mx.example.org"\n{extra}'
        )
        config = load_config(self.config_file)
        tls = ServerTLS.from_config(config.tls, config.hostname)
        self.live = Runtime(config, self.store, tls, reactor=None, started_at=time.time() - 90)
        return self.live

    def stub(self) -> StubTreq:
        """A StubTreq over the test site (its request class caps bodies)."""
        stub = StubTreq(self.root)
        stub._agent._serverFactory = self.site  # the agent's own Site would not cap bodies
        return stub

    async def make_key(
        self, permissions: list[str], name: str = "", account_id: int | None = None, **kw: Any
    ) -> str:
        """Create a key in the store; returns its mk_live_ token."""
        new, record = await apikeys.issue(
            self.store, account_id=account_id, name=name, permissions=permissions, **kw
        )
        self.key_ids = {**getattr(self, "key_ids", {}), new.key: record.key_id}
        return new.key

    async def settle(self, d: Deferred[Any], stub: StubTreq | None = None) -> Any:
        """Pump the in-memory connection until *d* fires (handlers wait on the database)."""
        return await settle(stub or self.http, d)

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "admin",
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        stub: StubTreq | None = None,
    ) -> Reply:
        """One request; *key* is a token or the name of one of the three keys (None: no
        Authorization header)."""
        stub = stub or self.http
        sent = dict(headers or {})
        if key is not None:
            token = {"admin": self.admin, "writer": self.writer, "reader": self.reader}.get(
                key, key
            )
            sent.setdefault("Authorization", f"Bearer {token}")
        kwargs: dict[str, Any] = {"headers": {k: [v] for k, v in sent.items()}}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        response = await self.settle(stub.request(method, BASE + path, **kwargs), stub)
        body = await self.settle(stub.content(response), stub)
        return Reply(response.code, response.headers, body)

    def assertError(self, reply: Reply, status: int, code: str) -> dict[str, Any]:
        """*reply* is a JSON error with *status* and *code*; returns the error object."""
        self.assertEqual(reply.status, status, reply.body[:500])
        self.assertEqual(reply.header("content-type"), "application/json")
        error: dict[str, Any] = reply.json["error"]
        self.assertEqual(error["code"], code)
        self.assertTrue(error["request_id"].startswith("req_"))
        self.assertEqual(error["request_id"], reply.header("x-request-id"))
        self.assertTrue(error["timestamp"].endswith("Z"))
        self.assertIsInstance(error["message"], str)
        self.assertIsInstance(error["details"], dict)
        return error

    async def make_user(self, address: str = "alice@example.com", **fields: Any) -> dict[str, Any]:
        """Create a user through the API (the domain first, if needed)."""
        domain = address.rpartition("@")[2]
        await self.call("POST", "/api/v1/domains", json={"name": domain})
        reply = await self.call(
            "POST", "/api/v1/users", json={"email": address, "password": "pw", **fields}
        )
        self.assertEqual(reply.status, 201, reply.body)
        return reply.json  # type: ignore[no-any-return]
