"""The webhook HTTP client: signed POSTs to a real local receiver, timeouts, and the SSRF
guard (literal addresses, names resolving to refused addresses, connecting only to the
resolved permitted address)."""

from __future__ import annotations

import hashlib
import hmac

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.trial import unittest
from twisted.web.client import URI

from a3mail import __version__
from a3mail.ops.webhook_client import GuardedEndpointFactory, WebhookClient, sign
from a3mail.store.webhook_targets import TargetRefused
from a3mail.store.webhooks import DueDelivery
from tests.support.webhooks import FakeResolver, Receiver

SECRET = "a-test-secret-1234"
BODY = b'{"id":"x","event":"email.sent","timestamp":"2025-01-15T10:30:00Z","data":{"s":"\xc3\xa9"}}'


def delivery(url: str, delivery_id: int = 41) -> DueDelivery:
    return DueDelivery(
        id=delivery_id,
        webhook_id=3,
        url=url,
        secret=SECRET,
        event="email.sent",
        event_id="x",
        body=BODY,
        attempts=0,
    )


class ClientTests(unittest.TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        self.receiver = await Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.clock = Clock()
        self.clock.advance(1_736_937_000)

    def client(self, **kwargs) -> WebhookClient:
        kwargs.setdefault("allow_private", True)
        return WebhookClient(reactor, clock=self.clock, **kwargs)

    async def test_posts_the_body_signed_with_its_headers(self):
        outcome = await self.client().post(delivery(self.receiver.url))
        self.assertEqual((outcome.response_status, outcome.error), (200, None))
        self.assertTrue(outcome.succeeded)
        self.assertEqual(outcome.started_at.timestamp(), 1_736_937_000)
        [request] = self.receiver.requests
        self.assertEqual((request.method, request.path, request.body), ("POST", "/hook", BODY))
        headers = request.headers
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["user-agent"], f"a3mail/{__version__}")
        self.assertEqual(headers["x-a3mail-event"], "email.sent")
        self.assertEqual(headers["x-a3mail-delivery"], "41")
        self.assertEqual(headers["x-a3mail-timestamp"], "1736937000")
        expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
        self.assertEqual(headers["x-a3mail-signature"], f"sha256={expected}")
        self.assertEqual(sign(SECRET, BODY), f"sha256={expected}")
        self.assertNotIn("cookie", headers)

    async def test_an_error_status_is_an_unsuccessful_outcome(self):
        self.receiver.codes = [500]
        outcome = await self.client().post(delivery(self.receiver.url))
        self.assertEqual((outcome.response_status, outcome.succeeded), (500, False))

    async def test_redirects_are_not_followed(self):
        self.receiver.codes = [307]
        outcome = await self.client().post(delivery(self.receiver.url))
        self.assertEqual((outcome.response_status, outcome.succeeded), (307, False))
        self.assertEqual(len(self.receiver.requests), 1)

    async def test_a_receiver_that_never_answers_times_out(self):
        self.receiver.hang = True
        posted = self.client(timeout=10).post(delivery(self.receiver.url))
        await self.receiver.wait(1)
        self.clock.advance(9.9)
        self.assertFalse(posted.called)
        self.clock.advance(0.1)
        outcome = await posted
        self.assertEqual((outcome.error, outcome.response_status), ("timed out after 10 s", None))
        self.assertEqual(outcome.duration, 10)

    async def test_a_closed_port_is_connection_refused(self):
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            Factory.forProtocol(Protocol)
        )
        number = port.getHost().port
        await port.stopListening()
        outcome = await self.client().post(delivery(f"http://127.0.0.1:{number}/"))
        self.assertEqual(outcome.error, "connection refused")

    async def test_cancelling_aborts_the_request(self):
        self.receiver.hang = True
        posted = self.client().post(delivery(self.receiver.url))
        await self.receiver.wait(1)
        posted.cancel()
        with self.assertRaises(defer.CancelledError):
            await posted

    async def test_loopback_and_names_resolving_to_it_are_refused(self):
        port = self.receiver.port.getHost().port
        resolver = FakeResolver({"loopback.test": ["127.0.0.1"], "hooks.test": ["127.0.0.1"]})
        guarded = self.client(allow_private=False, resolver=resolver)
        literal = await guarded.post(delivery(f"http://127.0.0.1:{port}/hook"))
        self.assertEqual(literal.error, "refused: 127.0.0.1 is a loopback address")
        named = await guarded.post(delivery(f"http://loopback.test:{port}/hook"))
        self.assertEqual(named.error, "refused: loopback.test resolves to a loopback address")
        self.assertEqual(self.receiver.requests, [])
        # The same name is delivered to when private targets are allowed: the resolver's
        # answer is what the connection goes to.
        allowed = await self.client(resolver=resolver).post(delivery(f"http://hooks.test:{port}/"))
        self.assertEqual(allowed.response_status, 200)
        self.assertEqual(resolver.asked, ["loopback.test", "hooks.test"])
        self.assertEqual(self.receiver.requests[0].headers["host"], f"hooks.test:{port}")

    async def test_an_unknown_name_is_a_dns_failure(self):
        outcome = await self.client(resolver=FakeResolver({})).post(delivery("http://nx.test/"))
        self.assertEqual(outcome.error, "DNS lookup failed")


class GuardedEndpointTests(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactor()
        self.resolver = FakeResolver(
            {
                "loopback.test": ["127.0.0.1", "::1"],
                "mixed.test": ["10.0.0.7", "93.184.216.34"],
                "v6.test": ["2606:4700:4700::1111"],
                "metadata.test": ["169.254.169.254"],
            }
        )
        self.factory = GuardedEndpointFactory(self.reactor, resolver=self.resolver)

    def connect(self, url: str) -> defer.Deferred:
        endpoint = self.factory.endpointForURI(URI.fromBytes(url.encode()))
        return endpoint.connect(Factory.forProtocol(Protocol))

    def test_refused_addresses(self):
        refused = {
            "http://127.0.0.1/": "loopback",
            "http://10.1.2.3/": "private",
            "http://192.168.0.1/": "private",
            "http://169.254.169.254/": "link-local",
            "http://100.64.0.9/": "shared (CGNAT)",
            "http://224.0.0.5/": "multicast",
            "http://0.0.0.0/": "unspecified",
            "http://[::1]/": "loopback",
            "http://[fc00::1]/": "unique local",
            "http://[fd12:3456::1]/": "unique local",
            "http://[fe80::1]/": "link-local",
            "http://[::ffff:10.0.0.1]/": "private",
            "http://loopback.test/": "loopback",
            "https://metadata.test/": "link-local",
        }
        for url, reason in refused.items():
            failure = self.failureResultOf(self.connect(url), TargetRefused)
            self.assertIn(f"a {reason} address", str(failure.value), url)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_connects_only_to_the_permitted_resolved_address(self):
        self.connect("http://mixed.test:8080/")
        [(host, port, *_)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("93.184.216.34", 8080))
        self.connect("https://v6.test/")
        self.assertEqual(self.reactor.tcpClients[1][:2], ("2606:4700:4700::1111", 443))
        self.assertEqual(self.resolver.asked, ["mixed.test", "v6.test"])

    def test_private_targets_can_be_allowed(self):
        factory = GuardedEndpointFactory(self.reactor, resolver=self.resolver, allow_private=True)
        factory.endpointForURI(URI.fromBytes(b"http://loopback.test:81/")).connect(
            Factory.forProtocol(Protocol)
        )
        self.assertEqual(self.reactor.tcpClients[0][:2], ("127.0.0.1", 81))
