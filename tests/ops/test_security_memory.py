"""The blocklist matcher, the connection gate, the security service and the live rate
limits, in memory (StringTransport, task.Clock, fakes)."""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet import task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import fail, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from a3mail.config import load_config
from a3mail.http import ratelimit
from a3mail.http.live_limits import LiveLimits, effective_limits
from a3mail.ops.gate import SMTP_REFUSAL, BlocklistGate, RefusedConnection, gate_factory
from a3mail.ops.security import SecurityService, rule_from_config
from a3mail.store.blocklist import IP_BLOCKED, IP_UNBLOCKED, AutoBlockRule, Blocklist
from a3mail.store.events import BUS_RECONNECTED, Event
from a3mail.store.ipmatch import BlockMatcher, parse_network
from a3mail.store.security_settings import RATE_LIMITS, SETTINGS_CHANGED

net = ipaddress.ip_network


class MatcherTests(TestCase):
    def test_addresses_networks_v4_v6_and_mapped(self):
        matcher = BlockMatcher()
        matcher.add(net("192.0.2.7/32"), None)
        matcher.add(net("10.0.0.0/8"), None)
        matcher.add(net("2001:db8::/32"), None)
        self.assertTrue(matcher.blocks("192.0.2.7", 0))
        self.assertFalse(matcher.blocks("192.0.2.8", 0))
        self.assertTrue(matcher.blocks("10.255.1.2", 0))
        self.assertFalse(matcher.blocks("11.0.0.1", 0))
        self.assertTrue(matcher.blocks("2001:db8:ffff::1", 0))
        self.assertFalse(matcher.blocks("2001:db9::1", 0))
        self.assertTrue(matcher.blocks("::ffff:10.1.2.3", 0))  # dual-stack listener
        self.assertFalse(matcher.blocks("not an address", 0))
        self.assertEqual(len(matcher), 3)
        matcher.remove(net("10.0.0.0/8"))
        self.assertFalse(matcher.blocks("10.255.1.2", 0))
        matcher.remove(net("10.0.0.0/8"))  # absent: no error

    def test_expiry_is_checked_against_the_given_time(self):
        matcher = BlockMatcher()
        matcher.add(net("192.0.2.0/24"), 100.0)
        self.assertTrue(matcher.blocks("192.0.2.1", 99.9))
        self.assertFalse(matcher.blocks("192.0.2.1", 100.0))

    def test_replace_swaps_the_whole_set(self):
        matcher = BlockMatcher()
        matcher.add(net("192.0.2.1/32"), None)
        matcher.replace([(net("198.51.100.0/24"), None), (net("0.0.0.0/0"), 5.0)])
        self.assertFalse(matcher.blocks("192.0.2.1", 10))
        self.assertTrue(matcher.blocks("198.51.100.1", 10))
        self.assertTrue(matcher.blocks("8.8.8.8", 1))  # 0.0.0.0/0 until t=5

    def test_many_entries_stay_fast(self):
        matcher = BlockMatcher()
        matcher.replace(
            (ipaddress.IPv4Network((0x0A000000 + i * 256, 24)), None) for i in range(50_000)
        )
        self.assertEqual(len(matcher), 50_000)
        self.assertTrue(matcher.blocks("10.0.100.5", 0))
        self.assertFalse(matcher.blocks("11.0.0.1", 0))

    def test_parse_network(self):
        self.assertEqual(str(parse_network(" 192.0.2.7 ")), "192.0.2.7/32")
        self.assertEqual(str(parse_network("2001:db8::1")), "2001:db8::1/128")
        self.assertEqual(str(parse_network("::ffff:192.0.2.0/120")), "192.0.2.0/24")
        for bad in ("", "10.0.0.1/8", "1.2.3", "x" * 200, "10.0.0.0/-1"):
            self.assertRaises(ValueError, parse_network, bad)

    def test_rule_exemptions(self):
        rule = AutoBlockRule(3, 60, 60, (net("127.0.0.0/8"), net("10.0.0.0/8")))
        self.assertTrue(rule.exempts("127.0.0.1"))
        self.assertTrue(rule.exempts("10.2.3.4"))
        self.assertTrue(rule.exempts("garbage"))
        self.assertFalse(rule.exempts("192.0.2.1"))


class Runtime:
    def __init__(self, matcher: BlockMatcher, clock: Any) -> None:
        self.store = type("S", (), {"blocklist": type("B", (), {"matcher": matcher})()})()
        self.reactor = clock


class GateTests(TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.matcher = BlockMatcher()
        self.matcher.add(net("192.0.2.0/24"), 2000.0)
        self.inner = Factory.forProtocol(Protocol)
        self.inner.greeting = "kept"  # type: ignore[attr-defined]

    def gate(self, name: str = "smtp", implicit_tls: bool = False) -> BlocklistGate:
        gate: BlocklistGate = gate_factory(
            name, self.inner, Runtime(self.matcher, self.clock), implicit_tls=implicit_tls
        )
        return gate

    def connect(self, gate: BlocklistGate, addr: Any) -> tuple[Any, StringTransport]:
        protocol = gate.buildProtocol(addr)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_listening_is_logged_under_the_wrapped_factory_s_name(self):
        # Twisted's Port logs "<prefix> starting on <port>" with the factory's logPrefix
        # only when the factory provides ILoggingContext; else it names the gate class.
        from twisted.internet.abstract import FileDescriptor

        self.inner.logPrefix = lambda: "SMTPFactory"
        self.assertEqual(FileDescriptor._getLogPrefix(None, self.gate()), "SMTPFactory")

    def test_allowed_peers_get_the_listeners_own_protocol(self):
        gate = self.gate()
        protocol, transport = self.connect(gate, IPv4Address("TCP", "198.51.100.1", 4000))
        self.assertIs(type(protocol), Protocol)
        self.assertIs(protocol.factory, self.inner)
        self.assertIs(protocol.transport, transport)  # no wrapper in between
        self.assertFalse(transport.disconnecting)
        self.assertEqual(gate.refused, 0)

    def test_blocked_smtp_peer_gets_554_and_is_closed(self):
        gate = self.gate("smtp")
        protocol, transport = self.connect(gate, IPv4Address("TCP", "192.0.2.9", 4000))
        self.assertIsInstance(protocol, RefusedConnection)
        self.assertEqual(transport.value(), SMTP_REFUSAL)
        self.assertTrue(SMTP_REFUSAL.startswith(b"554 5.7.1 "))
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(b"EHLO x\r\n")  # ignored
        self.assertEqual(transport.value(), SMTP_REFUSAL)
        self.assertEqual(gate.refused, 1)

    def test_other_listeners_and_implicit_tls_just_close(self):
        for name, tls in (("pop3", False), ("http", False), ("imap", False), ("submissions", True)):
            _, transport = self.connect(self.gate(name, tls), IPv4Address("TCP", "192.0.2.9", 4000))
            self.assertEqual(transport.value(), b"", name)
            self.assertTrue(transport.disconnecting, name)

    def test_expired_entries_stop_blocking_by_the_clock(self):
        gate = self.gate("pop3")
        self.clock.advance(1000)  # t = 2000: the entry's expiry
        protocol, _ = self.connect(gate, IPv4Address("TCP", "192.0.2.9", 4000))
        self.assertIs(type(protocol), Protocol)

    def test_ipv6_peers_and_forwarding(self):
        self.matcher.add(net("2001:db8::/32"), None)
        gate = self.gate("http")
        protocol, _ = self.connect(gate, IPv6Address("TCP", "2001:db8::5", 4000))
        self.assertIsInstance(protocol, RefusedConnection)
        self.assertEqual(gate.greeting, "kept")  # other attributes are the wrapped factory's
        self.assertIs(gate.wrappedFactory, self.inner)
        started: list[str] = []
        self.inner.startFactory = lambda: started.append("start")  # type: ignore[method-assign]
        self.inner.stopFactory = lambda: started.append("stop")  # type: ignore[method-assign]
        gate.doStart()
        gate.doStop()
        self.assertEqual(started, ["start", "stop"])
        self.assertEqual(gate.logPrefix(), "Factory")


class FakeEvents:
    def __init__(self) -> None:
        self.subscribers: list[Any] = []

    def subscribe(self, callback: Any) -> Any:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def emit(self, event_type: str, **data: Any) -> None:
        for callback in list(self.subscribers):
            callback(Event(event_type, data))


class FakeBlocklist(Blocklist):
    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.failing = False

    def refresh(self) -> Any:  # type: ignore[override]
        self.calls.append("refresh")
        return fail(OSError("database down")) if self.failing else succeed(0)

    def prune(self) -> Any:  # type: ignore[override]
        self.calls.append("prune")
        return succeed(0)


class FakeSettings:
    def __init__(self) -> None:
        self.refreshes = 0

    def refresh(self) -> Any:
        self.refreshes += 1
        return succeed({})


class FakeStore:
    def __init__(self) -> None:
        self.events = FakeEvents()
        self.blocklist = FakeBlocklist()
        self.security = FakeSettings()


class SecurityServiceTests(TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.store = FakeStore()
        self.config = load_config(
            None,
            overrides={"security": {"auto_block_failures": 4, "exempt_networks": ["10.0.0.0/8"]}},
        )
        self.service = SecurityService(self.store, lambda: self.config, self.clock)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def test_start_applies_the_rule_and_loads_at_once(self):
        rule = self.store.blocklist.auto_block
        self.assertEqual(rule, rule_from_config(self.config.security))
        self.assertEqual((rule.failures, rule.window, rule.duration), (4, 600.0, 3600.0))
        self.assertTrue(rule.exempts("127.0.0.1"))
        self.assertTrue(rule.exempts("::1"))
        self.assertTrue(rule.exempts("10.9.9.9"))
        self.assertEqual(self.store.blocklist.calls, ["prune", "refresh"])
        self.assertEqual(self.service.refreshes, 1)

    def test_bus_events_update_the_matcher_at_once(self):
        self.store.events.emit(IP_BLOCKED, network="192.0.2.0/24", expires=None)
        self.assertTrue(self.store.blocklist.matcher.blocks("192.0.2.4", 0))
        self.store.events.emit(IP_UNBLOCKED, network="192.0.2.0/24")
        self.assertFalse(self.store.blocklist.matcher.blocks("192.0.2.4", 0))
        self.store.events.emit(IP_BLOCKED, network="garbage")  # ignored, not fatal
        self.assertEqual(self.service.refreshes, 1)

    def test_settings_change_reconnect_and_the_period_reload(self):
        self.store.events.emit(SETTINGS_CHANGED, name=RATE_LIMITS)
        self.store.events.emit(BUS_RECONNECTED)
        self.assertEqual(self.service.refreshes, 3)
        self.clock.advance(self.config.security.refresh_interval)
        self.assertEqual(self.service.refreshes, 4)
        self.assertEqual(self.store.security.refreshes, 4)

    def test_a_reload_applies_a_new_rule(self):
        self.config = load_config(None, overrides={"security": {"auto_block_failures": 0}})
        self.clock.advance(30)
        self.assertEqual(self.store.blocklist.auto_block.failures, 0)

    def test_a_failed_reload_is_logged_and_the_next_one_runs(self):
        self.store.blocklist.failing = True
        self.clock.advance(30)
        self.assertEqual(len(self.flushLoggedErrors()), 0)  # a warning, not an error
        self.assertEqual(self.service.refreshes, 1)
        self.store.blocklist.failing = False
        self.clock.advance(30)
        self.assertEqual(self.service.refreshes, 2)

    def test_stop_unsubscribes_and_stops_the_loop(self):
        self.service.stopService()
        self.assertEqual(self.store.events.subscribers, [])
        self.clock.advance(300)
        self.assertEqual(self.service.refreshes, 1)


class Settings:
    def __init__(self) -> None:
        self.cached: dict[str, Any] = {}


class LiveLimitsTests(TestCase):
    def test_configuration_then_stored_overrides(self):
        config = load_config(
            None, overrides={"http": {"rate_limit_per_ip": 7, "rate_limit_window": "2m"}}
        )
        settings = Settings()
        live = LiveLimits(lambda: config, settings)
        limits = live()
        self.assertEqual((limits.per_ip, limits.per_ip_window), (7, 120))
        self.assertEqual((limits.per_key, limits.global_limit), (1000, 0))
        self.assertIs(live(), limits)  # unchanged: not recomputed
        settings.cached = {
            RATE_LIMITS: {
                "global": {"max_requests": 50, "window_seconds": 10},
                "per_user": {"max_requests": "bad", "window_seconds": 10},  # ignored
            }
        }
        limits = live()
        self.assertEqual((limits.global_limit, limits.global_window), (50, 10))
        self.assertEqual(limits.per_key, 1000)
        _, sources = effective_limits(config.http, settings.cached[RATE_LIMITS])
        self.assertEqual(sources, {"global": "database", "per_ip": "config", "per_user": "config"})


class FakeCounters:
    def __init__(self) -> None:
        self.pruned: list[int] = []

    def read(self, window: int, bucket: str) -> Any:
        return succeed(0)

    def add(self, window: int, deltas: Any, watch: Any = ()) -> Any:
        return succeed(dict(deltas))

    def prune(self, before: int) -> Any:
        self.pruned.append(before)
        return succeed(0)


class LimiterWindowTests(TestCase):
    def setUp(self) -> None:
        self.patch(ratelimit, "_LONGEST_WINDOW", [0])
        self.clock = task.Clock()
        self.clock.advance(1_000_040)  # 20 s into a 60 s window (1_000_020 is a multiple of 60)
        self.counters = FakeCounters()

    async def test_each_bucket_counts_in_its_own_window(self):
        limiter = ratelimit.RateLimiter(self.counters, self.clock, window=3600)
        first = await limiter.hit("global", 2, 60)
        self.assertEqual(first.reset, 1_000_080)
        self.assertTrue((await limiter.hit("global", 2, 60)).allowed)
        self.assertFalse((await limiter.hit("global", 2, 60)).allowed)
        hourly = await limiter.hit("key:k", 2)  # the limiter's own window
        self.assertEqual(hourly.reset % 3600, 0)
        self.clock.advance(40)  # a new 60 s window
        self.assertTrue((await limiter.hit("global", 2, 60)).allowed)

    async def test_no_limiter_prunes_rows_of_a_longer_window_in_use(self):
        hourly = ratelimit.RateLimiter(self.counters, self.clock, window=3600)
        minutely = ratelimit.RateLimiter(FakeCounters(), self.clock, window=60)
        await hourly.hit("key:k", 5, 7200)  # a stored two-hour window
        await minutely.hit("ip:a", 5)
        await minutely.flush()
        self.assertEqual(minutely.counters.pruned, [int(self.clock.seconds()) - 7200])
        ratelimit.note_window(86400)  # e.g. read from the stored settings
        await hourly.flush()
        self.assertEqual(self.counters.pruned, [int(self.clock.seconds()) - 86400])
