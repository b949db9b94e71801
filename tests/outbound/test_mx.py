"""MX resolution over a StaticResolver: preference order, fallbacks, null MX, errors."""

from __future__ import annotations

import random

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial import unittest

from a3mail.outbound.mx import (
    Hop,
    MXFinder,
    NullMXError,
    PermanentRouteError,
    TemporaryRouteError,
    parse_host_port,
)
from a3mail.smtp.dns import NO_ANSWER, DNSTemporaryError, StaticResolver


def find(records, domain="example.net", clock=None, **kwargs):
    finder = MXFinder(StaticResolver(records), clock or Clock(), timeout=5, **kwargs)
    return Deferred.fromCoroutine(finder.find_hops(domain))


class MXTests(unittest.TestCase):
    def test_hosts_in_preference_order_with_addresses(self):
        records = {
            ("MX", "example.net"): [(20, "b.example.net"), (10, "a.example.net")],
            ("A", "a.example.net"): ["192.0.2.1"],
            ("AAAA", "a.example.net"): ["2001:db8::1"],
            ("A", "b.example.net"): ["192.0.2.2"],
        }
        hops = self.successResultOf(find(records))
        self.assertEqual(
            hops,
            [
                Hop("a.example.net", "2001:db8::1"),
                Hop("a.example.net", "192.0.2.1"),
                Hop("b.example.net", "192.0.2.2"),
            ],
        )

    def test_equal_preferences_are_shuffled(self):
        records = {("MX", "example.net"): [(10, f"h{i}.example.net") for i in range(6)]}
        records.update({("A", f"h{i}.example.net"): [f"192.0.2.{i}"] for i in range(6)})
        orders = {
            tuple(h.host for h in self.successResultOf(find(records, rng=random.Random(seed))))
            for seed in range(10)
        }
        self.assertGreater(len(orders), 1)

    def test_no_mx_falls_back_to_the_domains_address(self):
        records = {("A", "example.net"): ["192.0.2.9"]}
        self.assertEqual(self.successResultOf(find(records)), [Hop("example.net", "192.0.2.9")])

    def test_null_mx_fails_at_once_with_556(self):
        failure = self.failureResultOf(find({("MX", "example.net"): [(0, ".")]}), NullMXError)
        self.assertEqual((failure.value.code, failure.value.status), (556, "5.1.10"))

    def test_no_mx_and_no_address_is_permanent(self):
        self.failureResultOf(find({}), PermanentRouteError)

    def test_dns_temporary_error_defers(self):
        records = {("MX", "example.net"): DNSTemporaryError("servfail")}
        self.failureResultOf(find(records), TemporaryRouteError)

    def test_lookup_timeout_defers(self):
        clock = Clock()
        result = find({("MX", "example.net"): NO_ANSWER}, clock=clock)
        self.assertNoResult(result)
        clock.advance(5)
        self.failureResultOf(result, TemporaryRouteError)

    def test_static_route_wins_over_dns(self):
        hops = self.successResultOf(find({}, static={"Example.NET": ["127.0.0.1:2526"]}))
        self.assertEqual(hops, [Hop("127.0.0.1", "127.0.0.1", 2526)])

    def test_parse_host_port(self):
        self.assertEqual(parse_host_port("mx.example.net"), ("mx.example.net", 25))
        self.assertEqual(parse_host_port("127.0.0.1:2526"), ("127.0.0.1", 2526))
        self.assertEqual(parse_host_port("[::1]:26"), ("::1", 26))
