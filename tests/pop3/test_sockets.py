"""Real sockets on loopback with real clients: Python's poplib (plain, STLS, pop3s), curl,
and fetchmail in UIDL keep mode.  The listener is built like the service builds it:
``listeners.PROTOCOL_FACTORIES[name](runtime)``, wrapped in TLS for implicit-TLS names."""

from __future__ import annotations

import os
import poplib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest

from a3mail.pop3.server import POP3Server
from tests.pop3.support import MESSAGE, PASSWORD, Pop3TestCase
from tests.store.helpers import in_thread
from tests.support.sockets import LoopbackListeners

USER = "alice@example.com"
OTHER = b"From: carol@remote.example\r\nSubject: second\r\n\r\n.\r\n..\r\nbye\r\n"


def joined(lines: list[bytes]) -> bytes:
    """A message from poplib's lines (it strips CRLF and undoes dot-stuffing)."""
    return b"".join(line + b"\r\n" for line in lines)


class SocketTestCase(LoopbackListeners, Pop3TestCase):
    """Listens with the production factory on 127.0.0.1, port 0."""

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.start_listeners("pop.example.com", ("pop3", "pop3s"))

    def session_closed(self, session: POP3Server) -> bool:
        """Whether the server side of ``session`` is gone."""
        return session._disconnected


class PoplibPlaintextTests(SocketTestCase):
    allow_plaintext_loopback = True

    async def test_a_whole_session(self):
        uid = await self.deliver()
        await self.deliver(OTHER)
        v = self.inbox.uidvalidity
        port = self.ports["pop3"]

        def client() -> dict[str, Any]:
            pop = poplib.POP3("127.0.0.1", port, timeout=10)
            try:
                result: dict[str, Any] = {"welcome": pop.getwelcome(), "capa": pop.capa()}
                pop.user(USER)
                pop.pass_(PASSWORD)
                result["stat"] = pop.stat()
                result["list"] = pop.list()[1]
                result["uidl"] = pop.uidl()[1]
                result["retr1"] = joined(pop.retr(1)[1])
                result["retr2"] = joined(pop.retr(2)[1])
                result["top"] = joined(pop.top(1, 1)[1])
                result["dele"] = pop.dele(2)
                result["quit"] = pop.quit()
            finally:
                pop.close()
            return result

        result = await in_thread(client)
        self.assertEqual(result["welcome"], b"+OK pop.example.com POP3 server ready.")
        self.assertIn("USER", result["capa"])
        self.assertIn("STLS", result["capa"])
        self.assertEqual(result["stat"], (2, len(MESSAGE) + len(OTHER)))
        self.assertEqual(result["list"], [b"1 %d" % len(MESSAGE), b"2 %d" % len(OTHER)])
        self.assertEqual(result["uidl"], [b"1 %d.%d" % (v, uid), b"2 %d.%d" % (v, uid + 1)])
        self.assertEqual(result["retr1"], MESSAGE)
        self.assertEqual(result["retr2"], OTHER)
        self.assertEqual(result["top"], MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\nFirst line.\r\n")
        self.assertEqual(result["quit"], b"+OK Bye, 1 messages deleted.")
        remaining = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.assertEqual([m.uid for m in remaining], [uid])


class PoplibTLSTests(SocketTestCase):
    async def test_passwords_refused_before_stls(self):
        port = self.ports["pop3"]

        def client() -> str:
            pop = poplib.POP3("127.0.0.1", port, timeout=10)
            try:
                assert "USER" not in pop.capa()
                pop.user(USER)
            except poplib.error_proto as e:
                return str(e.args[0], "ascii")
            finally:
                pop.close()
            return "accepted"

        self.assertEqual(
            await in_thread(client),
            "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS.",
        )

    async def test_stls_then_login(self):
        await self.deliver()
        port, context = self.ports["pop3"], self.client_context()

        def client() -> tuple[dict[str, list[str]], bytes, bytes]:
            pop = poplib.POP3("127.0.0.1", port, timeout=10)
            try:
                pop.stls(context)
                capa = pop.capa()
                pop.user(USER)
                pop.pass_(PASSWORD)
                return capa, joined(pop.retr(1)[1]), pop.quit()
            finally:
                pop.close()

        capa, message, bye = await in_thread(client)
        self.assertNotIn("STLS", capa)
        self.assertEqual(capa["SASL"], ["PLAIN", "LOGIN"])
        self.assertEqual((message, bye), (MESSAGE, b"+OK Bye."))

    async def test_pop3s(self):
        big = b"Subject: big\r\n\r\n" + (b"." * 70 + b"\r\n") * 5000  # dot lines at every offset
        await self.deliver(big)
        port, context = self.ports["pop3s"], self.client_context()

        def client() -> tuple[bytes, bytes, tuple[int, int]]:
            pop = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=10)
            try:
                pop.user(USER)
                pop.pass_(PASSWORD)
                return pop.getwelcome(), joined(pop.retr(1)[1]), pop.stat()
            finally:
                pop.quit()

        welcome, message, stat = await in_thread(client)
        self.assertTrue(welcome.startswith(b"+OK"))
        self.assertEqual(message, big)
        self.assertEqual(stat, (1, len(big)))

    async def test_pipelining_over_tls(self):
        """A whole session in one write, more commands than the server queues at once."""
        await self.deliver()
        port, context = self.ports["pop3s"], self.client_context()
        commands = f"USER {USER}\r\nPASS {PASSWORD}\r\n" + "LIST 1\r\nRETR 1\r\n" * 100 + "QUIT\r\n"

        def client() -> bytes:
            import socket

            received = []
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                tls.sendall(commands.encode())
                while chunk := tls.recv(65536):
                    received.append(chunk)
            return b"".join(received)

        out = await in_thread(client)
        retr = b"+OK %d octets\r\n" % len(MESSAGE) + MESSAGE.replace(b"\n.", b"\n..") + b".\r\n"
        expected = (
            b"+OK pop.example.com POP3 server ready.\r\n+OK Send the password.\r\n"
            b"+OK Logged in, 1 messages (%d octets).\r\n"
            % len(MESSAGE)
            + (b"+OK 1 %d\r\n" % len(MESSAGE) + retr) * 100
            + b"+OK Bye.\r\n"
        )
        self.assertEqual(out, expected)

    async def test_second_session_is_in_use(self):
        port, context = self.ports["pop3s"], self.client_context()

        def client() -> str:
            first = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=10)
            second = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=10)
            try:
                first.user(USER)
                first.pass_(PASSWORD)
                second.user(USER)
                try:
                    second.pass_(PASSWORD)
                except poplib.error_proto as e:
                    return str(e.args[0], "ascii")
                return "accepted"
            finally:
                first.quit()
                second.quit()

        self.assertEqual(
            await in_thread(client), "-ERR [IN-USE] Mailbox is locked by another POP3 session."
        )


class CurlTests(SocketTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        if shutil.which("curl") is None:
            raise SkipTest("curl is not installed (tests/support/ensure-tools.sh installs it)")
        await super().setUp()

    async def test_pop3s_list_and_retrieve(self):
        await self.deliver()
        await self.deliver(OTHER)
        url = f"pop3s://127.0.0.1:{self.ports['pop3s']}"
        listing = await self.run_tool("curl", "-sS", "-k", "-u", f"{USER}:{PASSWORD}", url + "/")
        self.assertEqual(listing.stdout, b"1 %d\r\n2 %d\r\n" % (len(MESSAGE), len(OTHER)))
        fetched = await self.run_tool("curl", "-sS", "-k", "-u", f"{USER}:{PASSWORD}", url + "/2")
        self.assertEqual(fetched.stdout, OTHER, fetched.stderr)

    async def test_pop3_with_stls_required(self):
        await self.deliver()
        url = f"pop3://127.0.0.1:{self.ports['pop3']}/1"
        fetched = await self.run_tool(
            "curl", "-sS", "-k", "--ssl-reqd", "-u", f"{USER}:{PASSWORD}", url
        )
        self.assertEqual(fetched.stdout, MESSAGE, fetched.stderr)

    async def test_wrong_password(self):
        url = f"pop3s://127.0.0.1:{self.ports['pop3s']}/"
        result = await self.run_tool("curl", "-sS", "-k", "-u", f"{USER}:wrong", url)
        self.assertEqual(result.returncode, 67, result.stderr)  # CURLE_LOGIN_DENIED


class FetchmailTests(SocketTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        if shutil.which("fetchmail") is None:
            raise SkipTest("fetchmail is not installed (tests/support/ensure-tools.sh installs it)")
        await super().setUp()
        self.home = Path(self.mktemp()).absolute()
        self.inbox_dir = self.home / "received"
        self.inbox_dir.mkdir(parents=True)
        rc = self.home / "fetchmailrc"
        rc.write_text(
            f"poll 127.0.0.1 service {self.ports['pop3s']} protocol pop3 uidl\n"
            f'    user "{USER}" password "{PASSWORD}" ssl sslcertck sslcertfile "{self.cert}"\n'
            f"    sslcommonname localhost\n"
            f"    keep mda \"/bin/sh -c 'cat > {self.inbox_dir}/msg.$$'\"\n"
        )
        rc.chmod(0o600)
        self.rc = rc

    async def fetch(self) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "HOME": str(self.home), "FETCHMAILHOME": str(self.home)}
        return await self.run_tool(
            "fetchmail", "-f", str(self.rc), "-i", str(self.home / "uids"), "--nodetach",
            "--pidfile", str(self.home / "pid"), "-v", env=env,
        )  # fmt: skip

    def received(self) -> list[bytes]:
        return sorted(path.read_bytes() for path in self.inbox_dir.iterdir())

    async def test_uidl_keep_mode_fetches_each_message_once(self):
        await self.deliver()
        await self.deliver(OTHER)
        first = await self.fetch()
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertEqual(len(self.received()), 2)
        self.assertIn(b"Subject: second", b"".join(self.received()))

        second = await self.fetch()  # exit status 1: no new mail
        self.assertIn(b"POP3> UIDL", second.stdout)
        self.assertIn(b"2 messages (2 seen)", second.stdout)
        self.assertNotIn(b"POP3> RETR", second.stdout)
        self.assertEqual(second.returncode, 1, second.stdout + second.stderr)
        self.assertEqual(len(self.received()), 2)

        await self.deliver(b"Subject: third\r\n\r\nnew\r\n")
        third = await self.fetch()
        self.assertEqual(third.returncode, 0, third.stdout + third.stderr)
        self.assertEqual(len(self.received()), 3)
        remaining = await self.store.messages.list(self.alice.id, self.inbox.id)
        self.assertEqual(len(remaining), 3)  # keep: nothing deleted on the server
