"""The blocklist refusing real connections on every listener of a running a3mail.

A whole ``A3MailService`` (store, the security background service, SMTP, POP3, HTTP and,
when present, IMAP listeners on loopback ports) is started.  Clients connect from
127.0.0.2; another store (another process's view) blocks that address; the service hears
it through NOTIFY and from then on every listener refuses 127.0.0.2 (SMTP with
``554 5.7.1``), while 127.0.0.1 is still served.  Real clients: smtplib, poplib, imaplib,
http.client, each bound to its source address.
"""

from __future__ import annotations

import http.client
import imaplib
import importlib
import poplib
import smtplib
import socket
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThread

from a3mail.config import LISTENER_DEFAULTS, load_config
from a3mail.ops.security import build_service
from a3mail.runtime import Runtime
from a3mail.service import A3MailService, ListenerService
from a3mail.tls import ServerTLS
from tests.store.helpers import wait_for
from tests.support import pg
from tests.support.store import StoreTestCase

BLOCKED = "127.0.0.2"
ALLOWED = "127.0.0.1"
LOOPBACK_PORT = "tcp:0:interface=127.0.0.1"


def imap_available() -> bool:
    """True once the IMAP front (a3mail.imap.factory) is in the tree."""
    try:
        importlib.import_module("a3mail.imap.factory")
    except ImportError:
        return False
    return "imap" in LISTENER_DEFAULTS


class _SourcePOP3(poplib.POP3):
    """poplib's client, connecting from a chosen source address."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self.source = source
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, (self.source, 0))


class _SourceIMAP4(imaplib.IMAP4):
    """imaplib's client, connecting from a chosen source address."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self.source = source
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, (self.source, 0))


def smtp_greeting(port: int, source: str) -> str:
    """Connect with smtplib; the greeting's code, or the refusal it raised."""
    try:
        client = smtplib.SMTP(ALLOWED, port, timeout=10, source_address=(source, 0))
    except smtplib.SMTPConnectError as e:
        return f"refused {e.smtp_code} {e.smtp_error.decode()}"
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return "closed"
    code, _ = client.noop()
    client.quit()
    return f"served {code}"


def pop3_greeting(port: int, source: str) -> str:
    """Connect with poplib: the greeting, or how it failed."""
    try:
        client = _SourcePOP3(ALLOWED, port, source)
    except (poplib.error_proto, ConnectionError, EOFError):
        return "closed"
    greeting = client.getwelcome().decode()
    client.quit()
    return f"served {greeting[:3]}"


def imap_greeting(port: int, source: str) -> str:
    """Connect with imaplib: the greeting, or how it failed."""
    try:
        client = _SourceIMAP4(ALLOWED, port, source)
    except (imaplib.IMAP4.abort, imaplib.IMAP4.error, ConnectionError, EOFError):
        return "closed"
    client.logout()
    return "served OK"


def http_status(port: int, source: str) -> str:
    """GET the OpenAPI document with http.client: the status, or how it failed."""
    connection = http.client.HTTPConnection(ALLOWED, port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/api/v1/openapi.json")
        response = connection.getresponse()
        response.read()
        return f"served {response.status}"
    except (http.client.RemoteDisconnected, ConnectionError):
        return "closed"
    finally:
        connection.close()


class RunningServerCase(StoreTestCase):
    """A running a3mail (no tests of its own); ``self.ports``: listener name -> port."""

    timeout = 60
    overrides: dict[str, Any] = {}

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        names = ["smtp", "pop3", "http"] + (["imap"] if imap_available() else [])
        listeners = {name: "" for name in LISTENER_DEFAULTS}
        listeners.update({name: LOOPBACK_PORT for name in names})
        config = load_config(
            None,
            overrides={
                "data_dir": str(self.data_dir),
                "hostname": "mx.test",
                "smtp": {"verify_inbound": False},
                "database": {"dsn": pg.dsn(), "schema": self.schema},
                "listeners": listeners,
                **self.overrides,
            },
        )
        tls = ServerTLS.from_config(config.tls, config.hostname)
        self.served = self.make_store()  # the service opens and closes it
        self.runtime = Runtime(config, self.served, tls, reactor=reactor)
        self.service = A3MailService(
            self.runtime,
            endpoint_factory=serverFromString,
            background={"security": build_service},
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        await self.service.ready
        self.assertIsNone(self.service.failure)
        self.ports: dict[str, int] = {}
        for child in self.service:
            if isinstance(child, ListenerService) and child.listening is not None:
                port = await child.listening
                self.ports[child.name] = port.getHost().port
        self.assertEqual(set(self.ports), set(names))
        await wait_for(lambda: self.served.events.connected, 10, "event bus connected")

    async def probe(self, source: str) -> dict[str, str]:
        """What each listener answers a client from *source*."""
        probes: dict[str, Any] = {
            "smtp": smtp_greeting,
            "pop3": pop3_greeting,
            "http": http_status,
            "imap": imap_greeting,
        }
        return {
            name: await deferToThread(probes[name], port, source)
            for name, port in self.ports.items()
        }


class BlocklistOnRealListenersTests(RunningServerCase):
    async def test_a_block_made_elsewhere_refuses_every_listener(self):
        served = {
            "smtp": "served 250",
            "pop3": "served +OK",
            "http": "served 200",
            "imap": "served OK",
        }
        expected_served = {name: served[name] for name in self.ports}
        self.assertEqual(await self.probe(BLOCKED), expected_served)

        other = self.make_store()  # another a3mail process's view of the database
        await other.open(listen=False)
        self.addCleanup(other.close)
        await other.blocklist.block(f"{BLOCKED}/32", reason="test", duration=600)
        # Heard through NOTIFY (the periodic reload is 30 s away).
        await wait_for(
            lambda: self.served.blocklist.matcher.blocks(BLOCKED, time.time()), 10, "NOTIFY"
        )

        refused = await self.probe(BLOCKED)
        expected = {name: "closed" for name in self.ports}
        expected["smtp"] = "refused 554 5.7.1 Access denied: your address is blocked"
        self.assertEqual(refused, expected)
        self.assertEqual(await self.probe(ALLOWED), expected_served)

        await other.blocklist.unblock(BLOCKED)
        await wait_for(
            lambda: not self.served.blocklist.matcher.blocks(BLOCKED, time.time()), 10, "unblock"
        )
        self.assertEqual(await self.probe(BLOCKED), expected_served)


def pop3_bad_logins(port: int, source: str, attempts: int) -> list[str]:
    """Log in with a wrong password *attempts* times in one POP3 session."""
    client = _SourcePOP3(ALLOWED, port, source)
    answers = []
    try:
        for _ in range(attempts):
            client.user("alice@example.com")
            try:
                client.pass_("wrong")
            except poplib.error_proto as e:
                answers.append(str(e)[:6])
        client.quit()
    finally:
        client.close()
    return answers


class AutomaticBlockOnRealListenersTests(RunningServerCase):
    overrides = {
        "security": {"auto_block_failures": 3, "exempt_loopback": False},
        "auth": {"failure_delay": "0s", "allow_plaintext_loopback": True},
    }

    async def test_failed_pop3_logins_block_the_address_on_every_listener(self):
        await self.make_account_in(self.served)
        answers = await deferToThread(pop3_bad_logins, self.ports["pop3"], BLOCKED, 3)
        self.assertEqual(answers, ["b'-ERR"] * 3)
        self.assertTrue(self.served.blocklist.matcher.blocks(BLOCKED, time.time()))
        refused = await self.probe(BLOCKED)
        self.assertEqual(refused["pop3"], "closed")
        self.assertEqual(refused["http"], "closed")
        self.assertTrue(refused["smtp"].startswith("refused 554 5.7.1"))
        [entry], _ = await self.served.audit.query(event_type="ip.auto_block")
        self.assertEqual(entry.ip, BLOCKED)
        self.assertEqual((await self.probe(ALLOWED))["pop3"], "served +OK")

    async def make_account_in(self, store: Any) -> None:
        await store.domains.add("example.com")
        await store.accounts.add("alice@example.com", password_hash="fake$right")
