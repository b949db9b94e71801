"""The service keeps runtime.listeners up to date: what /health and /ready read."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import protocol
from twisted.trial import unittest

from a3mail import config as config_module
from a3mail import tap
from tests.support import pg
from tests.support.store import require_asyncio_reactor
from tests.test_tap import SpyEndpoint


class ListenerStateTests(unittest.TestCase):
    def setUp(self):
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("opsstate")
        self.addCleanup(pg.drop_schema, self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.patch(config_module, "LISTENER_DEFAULTS", {"test": "tcp:2600:interface=127.0.0.1"})
        self.config_file = Path(self.mktemp())
        self.config_file.write_text(
            f'hostname = "mx.example.com"\ndata_dir = "{self.data_dir}"\n'
            f'[database]\ndsn = "{pg.dsn()}"\nschema = "{self.schema}"\n'
        )

    def make(self, fail: bool = False):
        factory = protocol.Factory.forProtocol(protocol.Protocol)
        calls: list[object] = []
        service = tap.makeService(
            {"config": str(self.config_file), "data-dir": None},
            endpoint_factory=lambda reactor, d: SpyEndpoint(calls, d, fail),
            protocols={"test": lambda runtime: factory},
        )
        service.stop_reactor = lambda: None
        return service

    async def test_listening_then_stopped(self):
        service = self.make()
        self.assertEqual(service.runtime.listeners, {})
        service.startService()
        await service.ready
        state = service.runtime.listeners["test"]
        self.assertEqual((state.state, state.up), ("listening", True))
        self.assertEqual(state.description, "tcp:2600:interface=127.0.0.1")
        self.assertIsNotNone(state.address)
        await service.stopService()
        self.assertEqual((state.state, state.up), ("stopped", False))

    async def test_a_listener_that_cannot_listen_is_failed_with_the_reason(self):
        service = self.make(fail=True)
        service.startService()
        self.addCleanup(service.stopService)
        await service.ready
        state = service.runtime.listeners["test"]
        self.assertEqual(state.state, "failed")
        self.assertIn("Address already in use", state.error)
