"""The running service over real sockets: reload swapping the TLS certificate while
sessions stay open, log events carrying the session, graceful shutdown draining sessions."""

from __future__ import annotations

import http.client
import smtplib
import socket
import ssl
import time
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import reactor, threads
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater

from a3mail import logs
from a3mail.config import LISTENER_DEFAULTS, load_config
from a3mail.runtime import Runtime
from a3mail.service import A3MailService
from a3mail.tls import ServerTLS, ensure_self_signed
from tests.support.store import StoreTestCase

MESSAGE = b"From: bob@example.net\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def pop3s_open(port: int) -> tuple[ssl.SSLSocket, bytes, bytes]:
    """A POP3S connection: (socket, greeting, the server's certificate)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = client_tls().wrap_socket(raw, server_hostname="localhost")
    greeting = sock.recv(1024)
    cert = sock.getpeercert(binary_form=True)
    assert cert is not None
    return sock, greeting, cert


def pop3_capa(sock: ssl.SSLSocket) -> bytes:
    sock.sendall(b"CAPA\r\n")
    data = b""
    while not data.endswith(b"\r\n.\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class ServiceTestCase(StoreTestCase):
    """An A3MailService with the smtp and pop3s listeners on free loopback ports."""

    drain_timeout = "10s"
    listeners: tuple[str, ...] = ("smtp", "pop3s")
    background: dict[str, Any] = {}

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir()
        for name in ("one", "two"):
            ensure_self_signed(self.dir / f"{name}.pem", self.dir / f"{name}.key", "localhost")
        self.file = self.dir / "a3mail.toml"
        self.write_config("one")
        config = load_config(self.file)
        tls = ServerTLS(config.tls.certificate, config.tls.private_key)
        tls.load()
        await self.make_account("alice@example.com")
        self.runtime = Runtime(config=config, store=self.make_store(), tls=tls, reactor=reactor)
        self.service = A3MailService(
            self.runtime, endpoint_factory=serverFromString, background=self.background
        )
        self.service.startService()
        self.addCleanup(self.stop_service)
        await self.service.ready
        self.ports: dict[str, int] = {}
        for listener in self.service:
            port = await listener.listening  # type: ignore[attr-defined]
            self.ports[listener.name] = port.getHost().port

    def write_config(self, cert: str) -> None:
        listeners = "".join(
            f'{name} = "{"tcp:0:interface=127.0.0.1" if name in self.listeners else ""}"\n'
            for name in LISTENER_DEFAULTS
        )
        self.file.write_text(
            f'hostname = "mx.example.com"\ndata_dir = "{self.data_dir}"\n'
            f'[tls]\ncertificate = "{self.dir / cert}.pem"\n'
            f'private_key = "{self.dir / cert}.key"\n'
            f"[listeners]\n{listeners}"
            f"[smtp]\nverify_inbound = false\n"
            f'[server]\ndrain_timeout = "{self.drain_timeout}"\n'
        )

    async def stop_service(self) -> None:
        if self.service.running:
            await self.service.stopService()

    async def sessions_gone(self) -> None:
        for _ in range(100):
            if not len(self.runtime.sessions):
                return
            await deferLater(reactor, 0.05)
        self.fail(f"sessions still open: {self.runtime.sessions.snapshot()}")


class ReloadTests(ServiceTestCase):
    async def test_reload_swaps_certificate_while_pop3s_and_smtp_sessions_stay_open(self):
        port, smtp_port = self.ports["pop3s"], self.ports["smtp"]
        old_sock, greeting, old_cert = await threads.deferToThread(pop3s_open, port)
        self.assertTrue(greeting.startswith(b"+OK"))
        self.assertEqual(old_cert, der(self.dir / "one.pem"))

        def smtp_starttls() -> tuple[smtplib.SMTP, bytes]:
            client = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
            client.ehlo("client.example")
            client.starttls(context=client_tls())
            cert = client.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            assert cert is not None
            return client, cert

        smtp, smtp_cert = await threads.deferToThread(smtp_starttls)
        self.assertEqual(smtp_cert, der(self.dir / "one.pem"))
        self.assertEqual(self.runtime.sessions.count_by_protocol(), {"pop3s": 1, "smtp": 1})

        self.write_config("two")
        report = await self.runtime.control.reload()
        self.assertEqual(report.changed, ["tls.certificate", "tls.private_key"])
        self.assertEqual(report.restart_required, [])

        # The open sessions go on with their connection...
        capa = await threads.deferToThread(pop3_capa, old_sock)
        self.assertTrue(capa.startswith(b"+OK"), capa)
        code, _ = await threads.deferToThread(smtp.noop)
        self.assertEqual(code, 250)
        # ... and new connections (implicit TLS and STARTTLS) get the new certificate.
        new_sock, _, new_cert = await threads.deferToThread(pop3s_open, port)
        self.assertEqual(new_cert, der(self.dir / "two.pem"))
        smtp2, smtp2_cert = await threads.deferToThread(smtp_starttls)
        self.assertEqual(smtp2_cert, der(self.dir / "two.pem"))

        for sock in (old_sock, new_sock):
            sock.close()
        await threads.deferToThread(smtp.quit)
        await threads.deferToThread(smtp2.quit)
        await self.sessions_gone()

    async def test_sighup_handler_reloads(self):
        self.write_config("two")
        await self.service.reload_on_signal()
        self.assertEqual(self.runtime.tls.certificate, self.dir / "two.pem")
        self.file.write_text("[limits]\nmax_recipients = 0\n")  # a bad file: logged, kept
        await self.service.reload_on_signal()
        self.assertEqual(self.runtime.config.tls.certificate, self.dir / "two.pem")


class RefreshingService(Service):
    refreshes = 0

    def refresh(self) -> None:
        self.refreshes += 1


class SecurityHookTests(ServiceTestCase):
    background = {"security": lambda runtime: RefreshingService()}

    async def test_reload_refreshes_the_security_service(self):
        security = self.service.background.getServiceNamed("security")
        await self.runtime.control.reload()
        self.assertEqual(security.refreshes, 1)


class SessionLogTests(ServiceTestCase):
    async def test_smtp_session_events_carry_session_id_and_peer(self):
        events: list[dict[str, Any]] = []
        logs.globalLogPublisher.addObserver(events.append)
        self.addCleanup(logs.globalLogPublisher.removeObserver, events.append)
        seen: dict[str, Any] = {}

        def send() -> str:
            client = smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10)
            host, port = client.sock.getsockname()[:2]  # type: ignore[union-attr]
            seen["sessions"] = self.runtime.sessions.snapshot()
            client.sendmail("bob@example.net", ["alice@example.com"], MESSAGE)
            client.quit()
            return f"{host}:{port}"

        peer = await threads.deferToThread(send)
        await self.sessions_gone()
        [session] = [s for s in seen["sessions"] if s["peer"] == peer]
        accepted = [e for e in events if "accepted" in e.get("log_format", "")]
        self.assertEqual(len(accepted), 1, events)
        self.assertEqual(accepted[0]["session_id"], session["session_id"])
        self.assertEqual(accepted[0]["peer"], peer)
        self.assertEqual(accepted[0]["session_protocol"], "smtp")


class DrainTests(ServiceTestCase):
    drain_timeout = "10s"
    listeners = ("smtp", "pop3s", "http")

    async def test_stop_waits_for_open_sessions_and_refuses_new_ones(self):
        smtp_port = self.ports["smtp"]
        client = await threads.deferToThread(smtplib.SMTP, "127.0.0.1", smtp_port, timeout=10)
        started = time.monotonic()
        stopping = self.service.stopService()
        await deferLater(reactor, 0.3)
        self.assertFalse(stopping.called)  # the session is still open
        with self.assertRaises(OSError):
            await threads.deferToThread(socket.create_connection, ("127.0.0.1", smtp_port), 2)
        code, _ = await threads.deferToThread(client.noop)  # the session still works
        self.assertEqual(code, 250)
        await threads.deferToThread(client.quit)
        await stopping
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(len(self.runtime.sessions), 0)

    async def test_idle_http_keep_alive_connections_do_not_hold_the_stop(self):
        def get() -> http.client.HTTPConnection:
            connection = http.client.HTTPConnection("127.0.0.1", self.ports["http"], timeout=10)
            connection.request("GET", "/api/v1/openapi.json")
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            return connection  # HTTP/1.1: kept alive, idle

        connection = await threads.deferToThread(get)
        self.assertEqual(self.runtime.sessions.count_by_protocol(), {"http": 1})
        started = time.monotonic()
        await self.service.stopService()
        self.assertLess(time.monotonic() - started, 5)  # not the 10 s drain timeout
        self.assertEqual(len(self.runtime.sessions), 0)
        connection.close()


class DrainTimeoutTests(ServiceTestCase):
    drain_timeout = "0.5s"

    async def test_sessions_open_after_the_drain_timeout_are_closed(self):
        sock, _, _ = await threads.deferToThread(pop3s_open, self.ports["pop3s"])
        started = time.monotonic()
        await self.service.stopService()
        self.assertGreaterEqual(time.monotonic() - started, 0.45)
        self.assertEqual(len(self.runtime.sessions), 0)

        def rest() -> bytes:
            data = b""
            while chunk := sock.recv(100):
                data += chunk
            return data

        # The client is told, over its TLS connection, then the connection closes.
        self.assertEqual(await threads.deferToThread(rest), b"-ERR server shutting down\r\n")
        sock.close()
