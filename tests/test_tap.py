"""makeService: option parsing, the service tree, listeners through a spy endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.application.service import IService
from twisted.internet import defer, protocol
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.testing import MemoryReactor
from twisted.logger import globalLogPublisher
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from a3mail import config as config_module
from a3mail import tap
from a3mail.control import innermost_factory
from a3mail.logs import set_level
from a3mail.service import A3MailService
from a3mail.tls import ServerTLS
from tests.support import pg
from tests.support.store import require_asyncio_reactor


class OptionsTests(unittest.TestCase):
    def test_config_and_data_dir(self):
        options = tap.Options()
        options.parseOptions(["--config", "/etc/a3mail.toml", "--data-dir", "/srv/mail"])
        self.assertEqual(
            (options["config"], options["data-dir"]), ("/etc/a3mail.toml", "/srv/mail")
        )

    def test_defaults_are_none(self):
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual((options["config"], options["data-dir"]), (None, None))

    def test_plugin_is_found_by_twistd(self):
        from twisted.application.service import IServiceMaker
        from twisted.plugin import getPlugins

        names = [p.tapname for p in getPlugins(IServiceMaker)]
        self.assertIn("a3mail", names)


@implementer(IStreamServerEndpoint)
class SpyEndpoint:
    """Records listen() calls instead of opening ports."""

    def __init__(self, calls, description, fail=False):
        self.calls, self.description, self.fail = calls, description, fail

    def listen(self, factory):
        self.calls.append((self.description, factory))
        if self.fail:
            return defer.fail(OSError(98, "Address already in use"))
        port = MemoryReactor().listenTCP(0, factory)
        return defer.succeed(port)


class MakeServiceTests(unittest.TestCase):
    def setUp(self):
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("tap")
        self.addCleanup(pg.drop_schema, self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.patch(
            config_module,
            "LISTENER_DEFAULTS",
            {"test": "tcp:2600:interface=127.0.0.1", "other": ""},
        )
        self.config_file = Path(self.mktemp())
        self.config_file.write_text(
            f'hostname = "mx.example.com"\ndata_dir = "{self.data_dir}"\n'
            f'[database]\ndsn = "{pg.dsn()}"\nschema = "{self.schema}"\n'
        )
        self.calls = []
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def endpoint_factory(self, fail=False):
        return lambda reactor, description: SpyEndpoint(self.calls, description, fail)

    def make(self, fail=False):
        factory = protocol.Factory.forProtocol(protocol.Protocol)
        return tap.makeService(
            {"config": str(self.config_file), "data-dir": None},
            endpoint_factory=self.endpoint_factory(fail),
            protocols={"test": lambda runtime: factory},
        ), factory

    async def test_service_tree_opens_store_then_listens(self):
        service, factory = self.make()
        self.assertTrue(verifyObject(IService, service))
        self.assertIsInstance(service, A3MailService)
        self.assertIsInstance(service.runtime.tls, ServerTLS)
        self.assertTrue((self.data_dir / "tls" / "cert.pem").exists())
        self.assertEqual(self.calls, [])  # nothing listens before start
        service.startService()
        self.addCleanup(service.stopService)
        await service.ready
        [(description, listening)] = self.calls
        self.assertEqual(description, "tcp:2600:interface=127.0.0.1")
        self.assertIs(innermost_factory(listening), factory)  # under the service's wrappers
        self.assertEqual([s.name for s in service], ["test"])
        status = await service.runtime.store.migration_status()
        self.assertEqual(status.pending, ())
        messages = [e.get("log_format", "") for e in self.events]
        self.assertIn("{name} listening on {description} ({address})", messages)

    async def run_with_logging(self, logging_section):
        with self.config_file.open("a") as f:
            f.write(f"[logging]\n{logging_section}")
        service, _ = self.make()
        self.addCleanup(set_level, "info")
        service.startService()
        await service.ready
        await service.stopService()
        return [e.get("log_format", "") for e in self.events]

    async def test_logging_level_filters_a3mail_events(self):
        messages = await self.run_with_logging('level = "warn"\n')
        self.assertNotIn("{name} listening on {description} ({address})", messages)
        self.assertNotIn("store ready: {origin} PostgreSQL, data in {data_dir}", messages)

    async def test_json_file_gets_one_json_object_per_line(self):
        json_log = self.data_dir.parent / "a3mail.jsonl"
        await self.run_with_logging(f'json_file = "{json_log}"\n')
        events = [json.loads(line) for line in json_log.read_text().splitlines()]
        formats = [e.get("log_format") for e in events]
        self.assertIn("store ready: {origin} PostgreSQL, data in {data_dir}", formats)
        self.assertIn("{name} listening on {description} ({address})", formats)

    async def test_listener_that_cannot_listen_stops_the_process(self):
        service, _ = self.make(fail=True)
        stopped = []
        service.stop_reactor = lambda: stopped.append(True)
        service.startService()
        self.addCleanup(service.stopService)
        await service.ready
        self.assertEqual(stopped, [True])
        self.assertIn(
            "listeners.test: cannot listen on tcp:2600:interface=127.0.0.1", service.failure
        )
        self.assertIn("Address already in use", service.failure)

    def test_bad_config_is_one_line_system_exit(self):
        self.config_file.write_text("[database]\npool_max = 0\n")
        with self.assertRaises(SystemExit) as caught:
            tap.makeService({"config": str(self.config_file), "data-dir": None})
        message = str(caught.exception.code)
        self.assertTrue(message.startswith("a3mail: config: database.pool_max"), message)
        self.assertNotIn("\n", message)

    def test_unreadable_certificate_is_one_line_system_exit(self):
        self.config_file.write_text(
            f'data_dir = "{self.data_dir}"\n[tls]\ncertificate = "/nonexistent/c.pem"\n'
            'private_key = "/nonexistent/k.pem"\n'
        )
        with self.assertRaises(SystemExit) as caught:
            tap.makeService({"config": str(self.config_file), "data-dir": None})
        self.assertEqual(
            str(caught.exception.code).split(":")[:3],
            ["a3mail", " tls.certificate", " cannot read /nonexistent/c.pem"],
        )


class LazyBuilderTests(unittest.TestCase):
    def test_imports_only_when_called(self):
        from a3mail.listeners import lazy

        builder = lazy("tests.test_tap:build_echo_factory")
        self.assertEqual(builder.__qualname__, "lazy(tests.test_tap:build_echo_factory)")
        self.assertEqual(builder("the runtime"), ("factory for", "the runtime"))


def build_echo_factory(runtime):
    return ("factory for", runtime)
