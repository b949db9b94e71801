"""Real sockets, real clients: smtplib (MX, submission with STARTTLS + AUTH, submissions
with implicit TLS) and swaks; each message checked in the recipient's maildir and index."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from a3mail.smtp.factory import build_factory
from a3mail.tls import ServerTLS, wrap_server_factory
from tests.smtp.support import HOSTNAME, PASSWORD, SmtpTestCase

MESSAGE = (
    "From: Bob <bob@example.net>\r\nTo: alice@example.com\r\nSubject: over the wire\r\n"
    "\r\nHello over a real socket.\r\n.starts with a dot\r\n"
)


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SocketTestCase(SmtpTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.runtime.tls = ServerTLS.from_config(self.config.tls, HOSTNAME)
        await self.user("alice@example.com")

    def listen(self, mode: str, *, implicit_tls: bool = False, **kwargs: Any) -> int:
        factory: Any = build_factory(self.runtime, mode, stats=self.stats, **kwargs)
        self.addCleanup(factory.context.reporter.idle)  # runs after the port has stopped
        if implicit_tls:
            factory = wrap_server_factory(factory, self.runtime.tls)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port


class SmtplibTests(SocketTestCase):
    async def test_mx_plain(self):
        port = self.listen("mx", verifier=self.make_verifier())

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                code, _ = client.ehlo("client.example.net")
                assert code == 250
                assert client.has_extn("pipelining") and client.has_extn("starttls")
                return client.sendmail("bob@example.net", ["alice@example.com"], MESSAGE)

        self.assertEqual(await deferToThread(send), {})
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertEqual(info.subject, "over the wire")
        self.assertIn(f"Authentication-Results: {HOSTNAME};".encode(), data)
        self.assertIn(b"spf=fail", data)  # 127.0.0.1 is not example.net's 192.0.2.1
        self.assertTrue(data.startswith(b"Return-Path: <bob@example.net>\r\n"))
        self.assertTrue(data.endswith(MESSAGE.encode()))

    async def test_mx_refuses_relay_and_unknown_users(self):
        port = self.listen("mx", verifier=None)

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                return client.sendmail(
                    "bob@example.net",
                    ["alice@example.com", "ghost@example.com", "x@elsewhere.example"],
                    MESSAGE,
                )

        refused = await deferToThread(send)
        self.assertEqual(refused["ghost@example.com"][0], 550)
        self.assertEqual(refused["x@elsewhere.example"][0], 554)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)

    async def test_submission_starttls_and_auth(self):
        port = self.listen("submission")
        await self.user("bob@example.com")

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo("laptop.example.com")
                assert not client.has_extn("auth")
                client.starttls(context=_client_tls())
                client.ehlo("laptop.example.com")
                assert "PLAIN" in client.esmtp_features["auth"]
                client.login("bob@example.com", PASSWORD)
                return client.sendmail(
                    "bob@example.com", ["alice@example.com", "friend@remote.example"], MESSAGE
                )

        self.assertEqual(await deferToThread(send), {})
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertIn(b" with ESMTPSA id ", data)
        self.assertEqual(len(await self.inbox("bob@example.com", "Sent")), 1)
        [entry] = await self.store.queue.list()
        self.assertEqual(entry.recipients, ("friend@remote.example",))

    async def test_submission_auth_login(self):
        port = self.listen("submission")

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.starttls(context=_client_tls())
                client.ehlo("laptop.example.com")
                client.user, client.password = "alice@example.com", PASSWORD
                code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
                return code

        self.assertEqual(await deferToThread(send), 235)

    async def test_submissions_implicit_tls(self):
        port = self.listen("submission", implicit_tls=True)

        def send() -> Any:
            with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=_client_tls()) as client:
                client.ehlo("laptop.example.com")
                assert not client.has_extn("starttls")
                client.login("alice@example.com", PASSWORD)
                return client.sendmail("alice@example.com", ["alice@example.com"], MESSAGE)

        self.assertEqual(await deferToThread(send), {})
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertIn(b" with ESMTPSA id ", data)


class SwaksTests(SocketTestCase):
    def setUp(self):  # type: ignore[override]
        if shutil.which("swaks") is None:
            self.skipTest("swaks is not installed (tests/support/ensure-tools.sh installs it)")
        return super().setUp()

    def swaks(self, *args: str) -> Any:
        return deferToThread(
            subprocess.run,
            ["swaks", "--server", "127.0.0.1", "--timeout", "10", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    async def test_swaks_pipelined_to_the_mx(self):
        port = self.listen("mx", verifier=self.make_verifier())
        result = await self.swaks(
            "--port",
            str(port),
            "--pipeline",
            "--from",
            "bob@example.net",
            "--to",
            "alice@example.com",
            "--helo",
            "client.example.net",
            "--header",
            "Subject: from swaks",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("250 2.0.0 Message accepted", result.stdout)
        [(info, data)] = await self.inbox("alice@example.com")
        self.assertEqual(info.subject, "from swaks")
        self.assertIn(b"Authentication-Results: ", data)

    async def test_swaks_submission_with_starttls_and_auth(self):
        port = self.listen("submission")
        result = await self.swaks(
            "--port",
            str(port),
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.com",
            "--auth-password",
            PASSWORD,
            "--from",
            "alice@example.com",
            "--to",
            "alice@example.com",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("235 2.7.0", result.stdout)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)

    async def test_swaks_auth_refused_without_tls(self):
        port = self.listen("submission")
        result = await self.swaks(
            "--port",
            str(port),
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.com",
            "--auth-password",
            PASSWORD,
            "--from",
            "alice@example.com",
            "--to",
            "alice@example.com",
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(await self.inbox("alice@example.com"), [])
