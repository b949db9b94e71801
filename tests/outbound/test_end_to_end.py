"""End to end: the "outbound" background service (built from the config, started like
a3mail starts it) delivers queued mail to a3mail's own MX listener on another loopback port,
over opportunistic STARTTLS with a self-signed certificate."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor

from a3mail.background import BACKGROUND_SERVICES
from a3mail.config import load_config
from a3mail.runtime import Runtime
from a3mail.smtp.factory import build_factory
from a3mail.tls import ServerTLS
from tests.outbound.support import MESSAGE, wait_until
from tests.smtp.support import HOSTNAME, PASSWORD, SmtpTestCase


class EndToEndTests(SmtpTestCase):
    async def test_service_delivers_to_a3mail_mx_over_starttls(self):
        self.runtime.tls = ServerTLS.from_config(self.config.tls, HOSTNAME)
        await self.user("bob@example.net")
        factory: Any = build_factory(self.runtime, "mx", stats=self.stats, verifier=None)
        self.addCleanup(factory.context.reporter.idle)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        toml = self.data_dir / "out.toml"
        toml.write_text(
            'hostname = "out.a3mail.test"\n'
            "[smtp]\n"
            'static_dns = { "A mx.example.net" = ["127.0.0.1"] }\n'
            "[outbound]\n"
            'poll_interval = "1h"\n'
            f'static_mx = {{ "example.net" = ["mx.example.net:{port.getHost().port}"] }}\n'
        )
        config = load_config(toml, data_dir=self.data_dir)
        runtime = Runtime(config=config, store=self.store, tls=self.runtime.tls, reactor=reactor)
        service = BACKGROUND_SERVICES["outbound"](runtime)
        service.startService()
        self.addCleanup(service.stopService)

        blob = await self.store.incoming(MESSAGE)
        await self.store.queue.enqueue(blob, "alice@example.com", ["bob@example.net"])
        service.wake()  # the bus would wake it too; do not depend on NOTIFY timing
        await wait_until(lambda: service.stats.sent == 1)
        [(info, data)] = await self.inbox("bob@example.net")
        self.assertEqual(info.subject, "hello there")
        self.assertTrue(data.startswith(b"Return-Path: <alice@example.com>\r\n"))
        self.assertIn(b"with ESMTPS", data)  # the Received header: TLS was used
        self.assertTrue(data.endswith(MESSAGE))
        await wait_until(lambda: not service._active)
        self.assertEqual(await self.store.queue.list(), [])

    async def test_smarthost_with_starttls_and_auth(self):
        """The smarthost is a3mail's own submission listener: STARTTLS, then AUTH."""
        self.runtime.tls = ServerTLS.from_config(self.config.tls, HOSTNAME)
        await self.user("alice@example.com")
        await self.user("bob@example.com")
        factory: Any = build_factory(self.runtime, "submission", stats=self.stats, verifier=None)
        self.addCleanup(factory.context.reporter.idle)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        toml = self.data_dir / "relay.toml"
        toml.write_text(
            'hostname = "out.a3mail.test"\n'
            "[smtp]\n"
            'static_dns = { "A relay.example.com" = ["127.0.0.1"] }\n'
            "[outbound]\n"
            'poll_interval = "1h"\n'
            'smarthost_tls = "starttls"\n'
            f'smarthost = "relay.example.com:{port.getHost().port}"\n'
            'smarthost_username = "alice@example.com"\n'
            f'smarthost_password = "{PASSWORD}"\n'
        )
        config = load_config(toml, data_dir=self.data_dir)
        runtime = Runtime(config=config, store=self.store, tls=self.runtime.tls, reactor=reactor)
        service = BACKGROUND_SERVICES["outbound"](runtime)
        service.startService()
        self.addCleanup(service.stopService)
        data = MESSAGE.replace(b"bob@example.net", b"bob@example.com")
        blob = await self.store.incoming(data)
        await self.store.queue.enqueue(blob, "alice@example.com", ["bob@example.com"])
        service.wake()
        await wait_until(lambda: service.stats.sent + service.stats.failed + service.stats.deferred)
        self.assertEqual(service.stats.sent, 1)
        [(_, received)] = await self.inbox("bob@example.com")
        self.assertIn(b"with ESMTPSA", received)  # TLS and AUTH
        self.assertTrue(received.endswith(data))
        await wait_until(lambda: not service._active)
