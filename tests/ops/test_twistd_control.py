"""A real ``twistd -n a3mail``: SIGHUP reloads; POST /api/v1/server/restart answers 202,
drains an open SMTP session, then the same process executes its command line again."""

from __future__ import annotations

import http.client
import os
import re
import signal
import smtplib
from pathlib import Path

from twisted.internet import threads

from a3mail.auth import apikeys
from a3mail.config import LISTENER_DEFAULTS
from tests.support import pg
from tests.support.store import StoreTestCase
from tests.test_twistd import Server

LISTENING = re.compile(r"(\w+) listening on .* \(127\.0\.0\.1:(\d+)\)")


class TwistdControlTests(StoreTestCase):
    timeout = 90

    async def test_sighup_reload_then_restart_with_drain(self):
        new, _ = await apikeys.issue(self.store, account_id=None, permissions=["admin"])
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir()
        config, text = self.write_config(workdir, '[server]\ndrain_timeout = "20s"\n')
        await threads.deferToThread(self.run_server, workdir, config, text, new.key)

    async def test_restart_in_exit_mode_exits_75_for_the_supervisor(self):
        new, _ = await apikeys.issue(self.store, account_id=None, permissions=["admin"])
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir()
        config, _ = self.write_config(workdir, '[server]\nrestart = "exit"\n')

        def run() -> None:
            server = Server(workdir, "--config", str(config))
            try:
                ports = self.ports(server)
                api = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=30)
                api.request(
                    "POST", "/api/v1/server/restart", headers={"Authorization": f"Bearer {new.key}"}
                )
                self.assertEqual(api.getresponse().status, 202)
                api.close()
                self.assertEqual(server.proc.wait(timeout=30), 75)
            finally:
                if server.proc.poll() is None:
                    server.stop(signal.SIGTERM)
            out, _ = server.proc.communicate()
            self.assertNotIn("Traceback", "".join(server.lines) + out)

        await threads.deferToThread(run)

    def write_config(self, workdir: Path, extra: str) -> tuple[Path, str]:
        """Only the smtp and http listeners, on free ports, over the test schema."""
        config = workdir / "a3mail.toml"
        listeners = "".join(
            f'{name} = "{"tcp:0:interface=127.0.0.1" if name in ("smtp", "http") else ""}"\n'
            for name in LISTENER_DEFAULTS
        )
        text = (
            f'data_dir = "{workdir / "data"}"\n'
            f'[database]\ndsn = "{pg.dsn()}"\nschema = "{self.schema}"\npool_min = 1\n'
            f"[listeners]\n{listeners}{extra}"
        )
        config.write_text(text)
        return config, text

    def ports(self, server: Server) -> dict[str, int]:
        found: dict[str, int] = {}
        while len(found) < 2:
            match = LISTENING.search(server.wait_for(" listening on ", timeout=60))
            assert match is not None
            found[match[1]] = int(match[2])
        return found

    def run_server(self, workdir: Path, config: Path, text: str, key: str) -> None:
        server = Server(workdir, "--config", str(config))
        try:
            ports = self.ports(server)
            pid = server.proc.pid

            config.write_text(text + '[limits]\nmax_recipients = 50\n[logging]\nlevel = "info"\n')
            os.kill(pid, signal.SIGHUP)
            line = server.wait_for("configuration reloaded from")
            self.assertIn("applied limits.max_recipients", line)

            smtp = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30)
            smtp.ehlo("client.example")
            api = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=30)
            api.request(
                "POST", "/api/v1/server/restart", headers={"Authorization": f"Bearer {key}"}
            )
            response = api.getresponse()
            self.assertEqual(response.status, 202, response.read())
            response.read()
            api.close()

            server.wait_for("draining 1 open sessions for up to 20.0s")
            self.assertEqual(smtp.noop()[0], 250)  # still served while draining
            smtp.quit()

            again = self.ports(server)  # the same process, started again
            self.assertEqual(server.proc.pid, pid)
            self.assertIsNone(server.proc.poll())
            smtp = smtplib.SMTP("127.0.0.1", again["smtp"], timeout=30)
            self.assertEqual(smtp.noop()[0], 250)
            smtp.quit()
        finally:
            code = server.stop(signal.SIGTERM)
        output = "".join(server.lines)
        self.assertIn(code, (0, -signal.SIGTERM), output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("closed 1 sessions still open", output)  # it ended by itself
        self.assertIn("restart requested: draining sessions, then executing", output)
        self.assertEqual(output.count("starting up"), 2, output)  # twistd, twice
