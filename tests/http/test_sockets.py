"""The ``http`` listener over a real loopback socket: treq, curl, and a raw oversized body."""

from __future__ import annotations

import json
import shutil
import socket
import time
from typing import Any

import attrs
import treq
from twisted.internet import reactor, task, threads
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest
from twisted.web.client import HTTPConnectionPool

from a3mail.http.factory import build_http
from tests.http.support import ApiTestCase


class RealSocketTests(ApiTestCase):
    """build_http(runtime) as the service builds it, listening on 127.0.0.1."""

    def runtime(self) -> Any:
        runtime = self.live_runtime("[http]\nmax_body = 1000\n")
        runtime.reactor = reactor
        return runtime

    async def setUp(self):
        await super().setUp()
        self.site = build_http(self.live)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def test_treq_over_tcp(self):
        pool = HTTPConnectionPool(reactor)
        self.addCleanup(lambda: task.deferLater(reactor, 0.05, lambda: None))
        self.addCleanup(pool.closeCachedConnections)
        headers = {"Authorization": [f"Bearer {self.admin}"]}
        response = await treq.post(
            f"{self.base}/api/v1/domains", json={"name": "example.com"}, headers=headers, pool=pool
        )
        self.assertEqual(response.code, 201)
        self.assertEqual((await response.json())["name"], "example.com")
        response = await treq.get(f"{self.base}/api/v1/domains", headers=headers, pool=pool)
        body = await response.json()
        self.assertEqual([d["name"] for d in body["data"]], ["example.com"])
        self.assertEqual(response.headers.getRawHeaders("x-ratelimit-limit"), ["1000"])
        response = await treq.get(f"{self.base}/nothing/here", headers=headers, pool=pool)
        self.assertEqual(response.code, 404)
        self.assertEqual((await response.json())["error"]["code"], "not_found")

    async def test_rate_limiter_flushes_while_the_port_listens(self):
        limiter = self.site.surfaces[0].resource.limiter
        self.assertTrue(limiter._loop.running)
        await treq.get(f"{self.base}/api/v1/openapi.json", persistent=False)
        await task.deferLater(reactor, 1.3, lambda: None)  # one flush interval
        rows = await self.sql("SELECT bucket, count FROM http_rate_limits")
        self.assertEqual([(r["bucket"], r["count"]) for r in rows], [("ip:127.0.0.1", 1)])
        await self.port.stopListening()
        self.assertIsNone(limiter._loop)
        await task.deferLater(reactor, 0.05, lambda: None)

    def test_body_cap_follows_the_configuration_in_force(self):
        self.assertEqual(self.site.max_body, 1000)
        self.live.config = attrs.evolve(
            self.live.config, http=attrs.evolve(self.live.config.http, max_body=5000)
        )
        self.assertEqual(self.site.max_body, 5000)

    async def test_curl(self):
        curl = shutil.which("curl")
        if curl is None:
            raise SkipTest("curl is not installed")
        out, err, code = await getProcessOutputAndValue(
            curl,
            [
                "-sS",
                "-H",
                f"Authorization: Bearer {self.reader}",
                "-w",
                "\\n%{http_code}",
                f"{self.base}/api/v1/users?limit=5",
            ],
            reactor=reactor,
        )
        self.assertEqual(code, 0, err)
        body, status = out.rsplit(b"\n", 1)
        self.assertEqual(status, b"200")
        self.assertEqual(json.loads(body)["meta"]["limit"], 5)

    async def test_oversized_body_is_refused_before_it_is_sent(self):
        port = self.port.getHost().port

        def exchange() -> tuple[bytes, bool]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(
                    b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 50000000\r\n"
                    b"Expect: 100-continue\r\n\r\n"
                )
                received = b""
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        return received, True  # the server closed the connection
                    received += chunk
                return received, False

        received, closed = await threads.deferToThread(exchange)
        self.assertTrue(closed)
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
        self.assertNotIn(b"100 Continue", received)
        self.assertIn(b"Connection: close", head)
        self.assertEqual(json.loads(body)["error"]["code"], "payload_too_large")

    async def test_chunked_body_past_the_cap_is_refused(self):
        port = self.port.getHost().port

        def exchange() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(
                    b"POST /api/v1/domains HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                for _ in range(3):
                    s.sendall(b"1f4\r\n" + b"x" * 500 + b"\r\n")
                received = b""
                while chunk := s.recv(65536):
                    received += chunk
                return received

        received = await threads.deferToThread(exchange)
        self.assertTrue(received.startswith(b"HTTP/1.1 413 "), received[:200])
