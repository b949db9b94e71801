"""TwistedNamesResolver against a real DNS server on 127.0.0.1, and the StaticResolver table."""

from __future__ import annotations

import time

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.names import common, dns, error, server
from twisted.trial import unittest

from a3mail.smtp.dns import (
    NO_ANSWER,
    DNSTemporaryError,
    StaticResolver,
    TwistedNamesResolver,
    normalize_name,
    reverse_pointer_name,
)


def _rr(name: str, rtype: int, payload: object) -> dns.RRHeader:
    return dns.RRHeader(name=name.encode(), type=rtype, payload=payload, auth=True)


class DictAuthority(common.ResolverBase):
    """An authority over a dict {(name, type): [RRHeader]}; unknown names are NXDOMAIN."""

    def __init__(self, records, broken=()):
        super().__init__()
        self.records = records
        self.names = {name for name, _ in records}
        self.broken = set(broken)

    def _lookup(self, name, cls, type, timeout):
        name = (name.decode() if isinstance(name, bytes) else name).lower()
        if name in self.broken:
            return defer.fail(RuntimeError("broken zone"))  # the server answers SERVFAIL
        if name not in self.names:
            return defer.fail(error.DomainError(name))  # NXDOMAIN
        return defer.succeed((self.records.get((name, type), []), [], []))


RECORDS = {
    ("example.com", dns.TXT): [
        _rr("example.com", dns.TXT, dns.Record_TXT(b"v=spf1 ip4:192.0.2.0/24", b" -all")),
        _rr("example.com", dns.TXT, dns.Record_TXT(b"google-site-verification=x")),
    ],
    ("example.com", dns.A): [_rr("example.com", dns.A, dns.Record_A("192.0.2.1"))],
    ("example.com", dns.AAAA): [_rr("example.com", dns.AAAA, dns.Record_AAAA("2001:db8::1"))],
    ("example.com", dns.MX): [
        _rr("example.com", dns.MX, dns.Record_MX(10, b"MX1.Example.com")),
        _rr("example.com", dns.MX, dns.Record_MX(20, b"mx2.example.com")),
    ],
    ("1.2.0.192.in-addr.arpa", dns.PTR): [
        _rr("1.2.0.192.in-addr.arpa", dns.PTR, dns.Record_PTR(b"mail.example.com"))
    ],
    ("alias.example.com", dns.TXT): [
        _rr("alias.example.com", dns.CNAME, dns.Record_CNAME(b"target.example.com")),
        _rr("target.example.com", dns.TXT, dns.Record_TXT(b"through the alias")),
        _rr("unrelated.example.com", dns.TXT, dns.Record_TXT(b"not for us")),
    ],
    ("nodata.example.com", dns.A): [],
}


class Silent(DatagramProtocol):
    """A UDP server that drops every query."""

    def datagramReceived(self, data, addr):
        pass


class TwistedNamesResolverTests(unittest.TestCase):
    def setUp(self):
        factory = server.DNSServerFactory(authorities=[DictAuthority(RECORDS, ["broken.example"])])
        port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.resolver = TwistedNamesResolver(
            reactor, timeout=2.0, servers=[("127.0.0.1", port.getHost().port)]
        )

    async def settle(self):
        await deferLater(reactor, 0, lambda: None)  # let the query's UDP port close

    async def test_txt_joins_the_strings_of_each_record(self):
        answer = await self.resolver.txt("Example.COM.")
        self.assertEqual(
            sorted(answer), [b"google-site-verification=x", b"v=spf1 ip4:192.0.2.0/24 -all"]
        )
        await self.settle()

    async def test_other_types(self):
        self.assertEqual(await self.resolver.a("example.com"), ["192.0.2.1"])
        self.assertEqual(await self.resolver.aaaa("example.com"), ["2001:db8::1"])
        self.assertEqual(
            sorted(await self.resolver.mx("example.com")),
            [(10, "mx1.example.com"), (20, "mx2.example.com")],
        )
        self.assertEqual(
            await self.resolver.ptr(reverse_pointer_name("192.0.2.1")), ["mail.example.com"]
        )
        await self.settle()

    async def test_cname_chain_is_followed(self):
        self.assertEqual(await self.resolver.txt("alias.example.com"), [b"through the alias"])
        await self.settle()

    async def test_nxdomain_and_no_data_are_empty(self):
        self.assertEqual(await self.resolver.txt("missing.example.com"), [])
        self.assertEqual(await self.resolver.a("nodata.example.com"), [])
        await self.settle()

    async def test_servfail_is_temporary(self):
        with self.assertRaises(DNSTemporaryError):
            await self.resolver.txt("broken.example")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # logged by the server
        await self.settle()

    async def test_impossible_names_are_not_queried(self):
        for name in ["", "a..example", "x" * 64 + ".example", ".".join(["abc"] * 70)]:
            self.assertEqual(await self.resolver.txt(name), [])

    async def test_silent_server_times_out_within_the_timeout(self):
        port = reactor.listenUDP(0, Silent(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        resolver = TwistedNamesResolver(
            reactor, timeout=0.5, servers=[("127.0.0.1", port.getHost().port)]
        )
        started = time.monotonic()
        with self.assertRaises(DNSTemporaryError):
            await resolver.txt("example.com")
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 1.5)
        await self.settle()

    async def test_timeout_is_shared_between_servers(self):
        silent = [reactor.listenUDP(0, Silent(), interface="127.0.0.1") for _ in range(2)]
        for port in silent:
            self.addCleanup(port.stopListening)
        resolver = TwistedNamesResolver(
            reactor, timeout=0.6, servers=[("127.0.0.1", p.getHost().port) for p in silent]
        )
        started = time.monotonic()
        with self.assertRaises(DNSTemporaryError):
            await resolver.a("example.com")
        self.assertLess(time.monotonic() - started, 1.5)
        await self.settle()


class StaticResolverTests(unittest.TestCase):
    def test_answers_failures_and_queries(self):
        resolver = StaticResolver(
            {
                ("TXT", "Example.com."): ["text", b"bytes"],
                ("MX", "example.com"): [(10, "MX.example.com.")],
                ("A", "down.example"): DNSTemporaryError("x"),
                ("A", "slow.example"): NO_ANSWER,
            }
        )
        self.assertEqual(self.successResultOf(resolver.txt("EXAMPLE.com")), [b"text", b"bytes"])
        self.assertEqual(self.successResultOf(resolver.mx("example.com")), [(10, "mx.example.com")])
        self.assertEqual(self.successResultOf(resolver.aaaa("example.com")), [])
        self.failureResultOf(resolver.a("down.example"), DNSTemporaryError)
        slow = resolver.a("slow.example")
        self.assertNoResult(slow)
        slow.cancel()
        self.failureResultOf(slow, defer.CancelledError)
        self.assertEqual(resolver.queries[0], ("TXT", "example.com"))

    def test_normalize_name(self):
        self.assertEqual(normalize_name("Example.COM."), "example.com")
        self.assertEqual(normalize_name("bücher.example"), "xn--bcher-kva.example")
        self.assertEqual(normalize_name("_dmarc.example.com"), "_dmarc.example.com")
        for bad in ["", ".", "a..b", "a b.example", "x" * 64 + ".example", "a\x00.example"]:
            self.assertIsNone(normalize_name(bad), bad)
