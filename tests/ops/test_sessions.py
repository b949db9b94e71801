"""The live sessions registry, the tracking factory, session fields in logs, the drain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport, StringTransportWithDisconnection
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.trial import unittest

from a3mail import logs
from a3mail.sessions import (
    GOODBYE_GRACE,
    GOODBYES,
    SessionRegistry,
    SessionTrackingFactory,
    current_session,
    innermost,
    peer_of,
)

PEER = IPv4Address("TCP", "192.0.2.7", 40001)


log = logs.get_logger("tests.ops.recorder")


class Recorder(Protocol):
    """Notes which session was current at each event, and logs one event per line."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def connectionMade(self) -> None:
        self.seen.append(("made", current_session()))

    def dataReceived(self, data: bytes) -> None:
        self.seen.append(("data", current_session()))
        log.info("got {data!r}", data=data)

    def connectionLost(self, reason: Any = None) -> None:
        self.seen.append(("lost", current_session()))


def connect(factory: Any) -> tuple[Any, StringTransportWithDisconnection]:
    protocol = factory.buildProtocol(PEER)
    transport = StringTransportWithDisconnection(peerAddress=PEER)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


class RegistryTests(unittest.TestCase):
    def test_register_count_snapshot_unregister(self):
        registry = SessionRegistry(clock=lambda: 100.0)
        a = registry.register("smtp", "192.0.2.1:25")
        b = registry.register("pop3", "192.0.2.2:110", session_id="fixed")
        self.assertEqual(len(registry), 2)
        self.assertEqual(registry.count_by_protocol(), {"smtp": 1, "pop3": 1})
        self.assertIs(registry.get("fixed"), b)
        self.assertEqual(
            registry.snapshot()[1],
            {
                "protocol": "pop3",
                "session_id": "fixed",
                "peer": "192.0.2.2:110",
                "started": 100.0,
                "user": None,
            },
        )
        registry.unregister(a)
        registry.unregister(a)  # twice: no error
        self.assertEqual([s.session_id for s in registry], ["fixed"])

    def test_peer_of(self):
        self.assertEqual(peer_of(StringTransport(peerAddress=PEER)), "192.0.2.7:40001")
        six = IPv4Address("TCP", "::1", 5)  # the host text is what matters
        self.assertEqual(peer_of(StringTransport(peerAddress=six)), "[::1]:5")


class TrackingFactoryTests(unittest.TestCase):
    def setUp(self):
        self.registry = SessionRegistry()
        self.factory = SessionTrackingFactory(Factory.forProtocol(Recorder), "smtp", self.registry)

    def test_connection_is_a_session_current_in_every_event(self):
        protocol, transport = connect(self.factory)
        [session] = list(self.registry)
        self.assertEqual((session.protocol, session.peer), ("smtp", "192.0.2.7:40001"))
        self.assertIs(session.transport, transport)
        protocol.dataReceived(b"hello")
        self.assertIsNone(current_session())  # only during the event
        transport.loseConnection()
        self.assertEqual(protocol.seen, [("made", session), ("data", session), ("lost", session)])
        self.assertEqual(len(self.registry), 0)

    def test_protocol_is_not_wrapped(self):
        protocol, transport = connect(self.factory)
        self.assertIsInstance(protocol, Recorder)
        self.assertIs(protocol.transport, transport)
        self.assertIs(innermost(protocol), protocol)
        transport.loseConnection()

    def test_refusing_factory(self):
        class Refuses(Factory):
            def buildProtocol(self, addr: Any) -> None:
                return None

        factory = SessionTrackingFactory(Refuses(), "smtp", self.registry)
        self.assertIsNone(factory.buildProtocol(PEER))

    def test_factory_attributes_and_start_stop_pass_through(self):
        inner = Factory.forProtocol(Recorder)
        inner.marker = "x"  # type: ignore[attr-defined]
        factory = SessionTrackingFactory(inner, "smtp", self.registry)
        self.assertEqual(factory.marker, "x")
        factory.doStart()
        self.assertEqual(inner.numPorts, 1)
        factory.doStop()
        self.assertEqual(inner.numPorts, 0)

    def test_log_events_carry_session_id_and_peer(self):
        events: list[dict[str, Any]] = []
        logs.globalLogPublisher.addObserver(events.append)
        self.addCleanup(logs.globalLogPublisher.removeObserver, events.append)
        protocol, transport = connect(self.factory)
        protocol.dataReceived(b"x")
        transport.loseConnection()
        [event] = [e for e in events if e.get("log_namespace") == "tests.ops.recorder"]
        [session_id] = {s.session_id for _, s in protocol.seen}
        self.assertEqual(event["session_id"], session_id)
        self.assertEqual(event["peer"], "192.0.2.7:40001")
        self.assertEqual(event["session_protocol"], "smtp")
        self.assertIn(session_id, event["log_system"])

    def test_idle_timeout_events_carry_the_session(self):
        clock = task.Clock()

        class Idle(Recorder, TimeoutMixin):
            callLater = clock.callLater

            def connectionMade(self) -> None:
                self.setTimeout(5)

            def timeoutConnection(self) -> None:
                log.info("timed out")
                self.transport.loseConnection()

        events: list[dict[str, Any]] = []
        logs.globalLogPublisher.addObserver(events.append)
        self.addCleanup(logs.globalLogPublisher.removeObserver, events.append)
        factory = SessionTrackingFactory(Factory.forProtocol(Idle), "pop3", self.registry)
        _protocol, transport = connect(factory)
        [session] = list(self.registry)
        clock.advance(5)
        self.assertFalse(transport.connected)
        [event] = [e for e in events if e.get("log_format") == "timed out"]
        self.assertEqual((event["session_id"], event["peer"]), (session.session_id, session.peer))

    def test_events_outside_a_session_carry_none(self):
        events: list[dict[str, Any]] = []
        logs.globalLogPublisher.addObserver(events.append)
        self.addCleanup(logs.globalLogPublisher.removeObserver, events.append)
        log.info("outside")
        [event] = [e for e in events if e.get("log_namespace") == "tests.ops.recorder"]
        self.assertNotIn("session_id", event)

    def test_json_file_lines_carry_session_fields(self):
        path = Path(self.mktemp())
        stop = logs.add_json_file(path)
        self.addCleanup(stop)
        twisted_log = Logger(namespace="tests.ops.plain", observer=logs.globalLogPublisher)

        class Both(Recorder):
            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data)  # an a3mail event
                twisted_log.info("a plain Twisted event")  # not through a3mail's logger

        protocol, transport = connect(
            SessionTrackingFactory(Factory.forProtocol(Both), "pop3", self.registry)
        )
        protocol.dataReceived(b"x")
        session = protocol.seen[0][1]
        transport.loseConnection()
        stop()
        records = [json.loads(line) for line in path.read_text().splitlines()]
        mine = [r for r in records if r.get("log_namespace", "").startswith("tests.ops.")]
        self.assertEqual(len(mine), 2)
        for record in mine:
            self.assertEqual(record["session_id"], session.session_id)
            self.assertEqual(record["peer"], "192.0.2.7:40001")
            self.assertEqual(record["session_protocol"], "pop3")


class DrainTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.registry = SessionRegistry()
        self.factory = SessionTrackingFactory(Factory.forProtocol(Recorder), "smtp", self.registry)

    def test_empty_registry_drains_at_once(self):
        d = Deferred.fromCoroutine(self.registry.drain(30, self.clock))
        self.assertEqual(self.successResultOf(d), 0)

    def test_sessions_that_end_within_the_timeout_are_not_cut(self):
        _protocol, transport = connect(self.factory)
        d = Deferred.fromCoroutine(self.registry.drain(30, self.clock))
        self.clock.advance(5)
        self.assertNoResult(d)
        transport.loseConnection()  # the client finished
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(self.clock.seconds(), 5.1)

    def test_sessions_still_open_at_the_deadline_get_a_goodbye_and_are_closed(self):
        _protocol, transport = connect(self.factory)
        d = Deferred.fromCoroutine(self.registry.drain(2, self.clock))
        for _ in range(19):
            self.clock.advance(0.1)
        self.assertNoResult(d)
        self.assertTrue(transport.connected)
        self.clock.advance(0.1)
        self.assertFalse(transport.connected)
        self.assertEqual(transport.value(), GOODBYES["smtp"])
        self.assertTrue(transport.value().startswith(b"421 "))
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(len(self.registry), 0)

    def test_a_session_that_does_not_close_is_cut_after_the_grace(self):
        _protocol, transport = connect(self.factory)
        transport.loseConnection = lambda: None  # a client that never lets go
        aborted: list[bool] = []
        transport.abortConnection = lambda: (  # type: ignore[method-assign]
            aborted.append(True),
            StringTransportWithDisconnection.loseConnection(transport),
        )
        d = Deferred.fromCoroutine(self.registry.drain(1, self.clock))
        self.clock.pump([0.1] * 10)
        self.assertFalse(aborted)
        self.clock.pump([0.1] * (int(GOODBYE_GRACE / 0.1) + 1))
        self.assertEqual(aborted, [True])
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), 1)

    def test_idle_sessions_are_closed_at_once(self):
        class Channel(Recorder):
            requests: list[Any] = []

        factory = SessionTrackingFactory(Factory.forProtocol(Channel), "http", self.registry)
        busy, busy_transport = connect(factory)
        busy.requests = ["pending"]
        _idle, idle_transport = connect(factory)
        d = Deferred.fromCoroutine(self.registry.drain(30, self.clock))
        self.assertFalse(idle_transport.connected)
        self.assertTrue(busy_transport.connected)
        busy.requests = []
        self.clock.advance(0.1)
        self.clock.advance(0.1)
        self.assertFalse(busy_transport.connected)
        self.assertEqual(self.successResultOf(d), 0)
