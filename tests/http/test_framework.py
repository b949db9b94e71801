"""The JSON pipeline: errors for every path (404, 405, 413, 400, 500, 503), request ids,
HEAD, client addresses, the surface registry."""

from __future__ import annotations

import ipaddress
from typing import Any

from klein import Klein
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from a3mail.http import errors
from a3mail.http.admin.api import GROUPS
from a3mail.http.admin.context import AdminContext
from a3mail.http.auth import READ
from a3mail.http.request import client_ip, parse_networks
from a3mail.http.routes import PUBLIC, endpoint
from a3mail.http.surfaces import HttpRoot, Surface
from a3mail.store.db import StoreUnavailable
from tests.http.support import ApiTestCase


class Broken:
    """A test-only group whose handlers fail in the ways a real one might."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "GET", "/api/v1/test/crash", READ)
    async def crash(self, request: Any) -> Any:
        raise RuntimeError("secret internals: /etc/shadow")

    @endpoint(app, "GET", "/api/v1/test/down", READ)
    async def down(self, request: Any) -> Any:
        raise StoreUnavailable("connection refused by 10.0.0.5")

    @endpoint(app, "GET", "/api/v1/test/open", PUBLIC)
    async def open(self, request: Any) -> Any:
        return {"ok": True}

    @endpoint(app, "POST", "/api/v1/test/echo", READ)
    async def echo(self, request: Any) -> Any:
        return {"length": len(request.content.read())}


class ErrorBodyTests(ApiTestCase):
    """Every failure is the JSON error document, never Klein's or Werkzeug's HTML."""

    groups = (*GROUPS, Broken)

    async def test_unknown_path_is_json_404(self):
        reply = await self.call("GET", "/api/v1/no/such/thing")
        error = self.assertError(reply, 404, "not_found")
        self.assertEqual(error["details"], {"path": "/api/v1/no/such/thing"})
        self.assertNotIn(b"<html", reply.body.lower())

    async def test_path_outside_every_surface_is_json_404_with_rate_headers(self):
        reply = await self.call("GET", "/favicon.ico")
        self.assertError(reply, 404, "not_found")
        self.assertEqual(reply.header("x-ratelimit-limit"), "1000")

    async def test_trailing_slash_is_json_404(self):
        reply = await self.call("GET", "/api/v1/users/")
        self.assertError(reply, 404, "not_found")

    async def test_wrong_method_is_json_405_with_allow(self):
        reply = await self.call("PATCH", "/api/v1/users")
        error = self.assertError(reply, 405, "method_not_allowed")
        self.assertEqual(reply.header("allow"), "GET, HEAD, POST")
        self.assertEqual(error["details"]["allowed"], ["GET", "HEAD", "POST"])

    async def test_unhandled_exception_is_json_500_without_its_text(self):
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        reply = await self.call("GET", "/api/v1/test/crash")
        error = self.assertError(reply, 500, "internal_error")
        self.assertEqual(error["message"], "internal server error")
        self.assertNotIn(b"shadow", reply.body)
        self.assertNotIn(b"RuntimeError", reply.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        logged = [e for e in events if e.get("request_id") == error["request_id"]]
        self.assertTrue(logged, "the failure is logged with the request id")

    async def test_store_unavailable_is_503_with_retry_after(self):
        reply = await self.call("GET", "/api/v1/test/down")
        error = self.assertError(reply, 503, "service_unavailable")
        self.assertEqual(reply.header("retry-after"), "5")
        self.assertNotIn("10.0.0.5", error["message"])

    async def test_invalid_json_is_400(self):
        reply = await self.call("POST", "/api/v1/domains", data=b'{"name": ')
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"], {"field": "body"})

    async def test_json_not_an_object_is_400(self):
        reply = await self.call("POST", "/api/v1/domains", json=["example.com"])
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"]["field"], "body")

    async def test_nan_is_not_json(self):
        reply = await self.call("POST", "/api/v1/domains", data=b'{"max_users": NaN}')
        self.assertError(reply, 400, "invalid_request")

    async def test_deep_nesting_is_400_not_500(self):
        reply = await self.call("POST", "/api/v1/domains", data=b"[" * 100_000)
        self.assertError(reply, 400, "invalid_request")

    async def test_unknown_field_is_named(self):
        reply = await self.call("POST", "/api/v1/domains", json={"name": "a.com", "colour": 1})
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"]["field"], "colour")
        self.assertIn("unknown field", error["message"])

    async def test_wrong_type_is_named_with_value(self):
        reply = await self.call("POST", "/api/v1/domains", json={"name": "a.com", "max_users": "x"})
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"], {"field": "max_users", "value": "x"})

    async def test_bool_is_not_an_integer(self):
        reply = await self.call(
            "POST", "/api/v1/domains", json={"name": "a.com", "max_users": True}
        )
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "max_users"
        )

    async def test_bad_query_parameter_is_named(self):
        reply = await self.call("GET", "/api/v1/users?page=zero")
        error = self.assertError(reply, 400, "invalid_request")
        self.assertEqual(error["details"], {"field": "page", "value": "zero"})
        reply = await self.call("GET", "/api/v1/users?limit=101")
        self.assertEqual(
            self.assertError(reply, 400, "invalid_request")["details"]["field"], "limit"
        )

    async def test_non_utf8_path_is_json_400(self):
        reply = await self.call("GET", "/api/v1/users/%ff")
        self.assertError(reply, 400, "invalid_request")

    async def test_declared_length_over_the_cap_is_413(self):
        self.site.max_body = 100
        reply = await self.call("POST", "/api/v1/test/echo", data=b"x" * 101)
        error = self.assertError(reply, 413, "payload_too_large")
        self.assertEqual(error["details"], {"max_body": 100})
        self.assertIsNone(reply.header("x-ratelimit-limit"))  # refused before routing

    async def test_body_at_the_cap_is_read(self):
        self.site.max_body = 100
        reply = await self.call("POST", "/api/v1/test/echo", data=b"x" * 100)
        self.assertEqual((reply.status, reply.json), (200, {"length": 100}))

    async def test_public_route_needs_no_key(self):
        reply = await self.call("GET", "/api/v1/test/open", key=None)
        self.assertEqual((reply.status, reply.json), (200, {"ok": True}))
        self.assertEqual(reply.header("x-ratelimit-limit"), "100")  # counted per address

    async def test_request_id_header_and_no_store(self):
        first = await self.call("GET", "/api/v1/users")
        second = await self.call("GET", "/api/v1/users")
        self.assertRegex(first.header("x-request-id"), r"^req_[0-9a-f]{16}$")
        self.assertNotEqual(first.header("x-request-id"), second.header("x-request-id"))
        self.assertEqual(first.header("cache-control"), "no-store")
        self.assertEqual(first.header("content-type"), "application/json")

    async def test_every_request_is_logged_with_its_id(self):
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        reply = await self.call("GET", "/api/v1/users")
        [event] = [e for e in events if e.get("request_id") == reply.header("x-request-id")]
        self.assertEqual(
            (event["method"], event["path"], event["status"]), ("GET", "/api/v1/users", 200)
        )
        self.assertEqual(event["key"], self.key_ids[self.admin])

    async def test_head_has_headers_and_no_body(self):
        reply = await self.call("HEAD", "/api/v1/users")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body, b"")
        self.assertEqual(reply.header("content-type"), "application/json")


class PaginationTests(ApiTestCase):
    """The list envelope."""

    async def test_meta_and_links_keep_the_filters(self):
        for i in range(5):
            await self.call("POST", "/api/v1/domains", json={"name": f"d{i}.example"})
        reply = await self.call("GET", "/api/v1/domains?limit=2&page=2&search=example")
        body = reply.json
        self.assertEqual([d["name"] for d in body["data"]], ["d2.example", "d3.example"])
        self.assertEqual(body["meta"], {"page": 2, "limit": 2, "total": 5, "total_pages": 3})
        self.assertEqual(
            body["links"],
            {
                "first": "/api/v1/domains?limit=2&search=example&page=1",
                "last": "/api/v1/domains?limit=2&search=example&page=3",
                "prev": "/api/v1/domains?limit=2&search=example&page=1",
                "next": "/api/v1/domains?limit=2&search=example&page=3",
            },
        )

    async def test_empty_list(self):
        body = (await self.call("GET", "/api/v1/domains")).json
        self.assertEqual(body["meta"], {"page": 1, "limit": 20, "total": 0, "total_pages": 0})
        self.assertIsNone(body["links"]["next"])
        self.assertIsNone(body["links"]["prev"])


class _FakeRequest:
    def __init__(self, peer: str, forwarded: str | None = None) -> None:
        self.peer, self.forwarded = peer, forwarded

    def getClientAddress(self) -> Any:
        return type("Address", (), {"host": self.peer})()

    def getHeader(self, name: bytes) -> bytes | None:
        return None if self.forwarded is None else self.forwarded.encode()


class ClientAddressTests(TestCase):
    """X-Forwarded-For is believed only from trusted proxies."""

    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])

    def test_no_trusted_proxies_means_the_peer(self):
        self.assertEqual(client_ip(_FakeRequest("192.0.2.7", "198.51.100.1")), "192.0.2.7")

    def test_untrusted_peer_cannot_claim_an_address(self):
        request = _FakeRequest("192.0.2.7", "198.51.100.1")
        self.assertEqual(client_ip(request, self.proxies), "192.0.2.7")

    def test_trusted_proxy_chain_gives_the_last_untrusted_hop(self):
        request = _FakeRequest("127.0.0.1", "203.0.113.9, 198.51.100.1, 10.1.2.3")
        self.assertEqual(client_ip(request, self.proxies), "198.51.100.1")

    def test_malformed_header_falls_back_to_the_peer(self):
        request = _FakeRequest("127.0.0.1", "198.51.100.1, not-an-ip")
        self.assertEqual(client_ip(request, self.proxies), "127.0.0.1")

    def test_parse_networks(self):
        self.assertEqual(
            parse_networks(["192.0.2.1", "2001:db8::/32"]),
            (ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("2001:db8::/32")),
        )


class SurfaceTests(TestCase):
    """HttpRoot hands a request to the surface with the longest prefix."""

    def test_longest_prefix_wins_and_fallback(self):
        admin = Surface("admin", ("/api/v1",), object())
        temp = Surface("tempmail", ("/api",), object())
        ops = Surface("ops", ("/health", "/metrics"), object())
        root = HttpRoot([temp, admin, ops], fallback=admin)
        self.assertIs(root.surface_for(b"/api/v1/users"), admin)
        self.assertIs(root.surface_for(b"/api/v1"), admin)
        self.assertIs(root.surface_for(b"/api/v10"), temp)
        self.assertIs(root.surface_for(b"/api/emails"), temp)
        self.assertIs(root.surface_for(b"/metrics"), ops)
        self.assertIs(root.surface_for(b"/healthz"), admin)


class ErrorCodeTests(TestCase):
    """The codes of the issue, one per status."""

    def test_codes(self):
        self.assertEqual(
            {cls.status: cls("x").code for cls in errors.ApiError.__subclasses__()},
            {
                400: "invalid_request",
                401: "unauthorized",
                403: "forbidden",
                404: "not_found",
                405: "method_not_allowed",
                409: "conflict",
                413: "payload_too_large",
                429: "rate_limited",
                503: "service_unavailable",
            },
        )
        self.assertEqual(errors.ApiError("x").code, "internal_error")
