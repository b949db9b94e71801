"""`twistd -n a3mail` on a fresh data directory: embedded PostgreSQL, TLS, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from twisted.internet import threads
from twisted.trial import unittest

from a3mail.config import LISTENER_DEFAULTS
from tests.support.twistd import ROOT, TWISTD, TwistdProcess


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(proc)
    return found


class Server(TwistdProcess):
    """One twistd process, its output collected line by line."""

    def wait_for(self, text: str, timeout: float = 60) -> str:
        line = self.first_match(lambda line: line if text in line else None, timeout)
        if line is not None:
            return line
        raise AssertionError(f"{text!r} not seen; output:\n{''.join(self.lines)}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=60)
        self.lines.append(out)
        return self.proc.returncode


class FreshMachineTests(unittest.TestCase):
    def test_start_stop_restart_with_embedded_database(self):
        return threads.deferToThread(self._fresh_machine)

    def _fresh_machine(self):
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir()
        data = workdir / "data"
        # The defaults, except that every listener takes a free port (the standard test
        # ports may be in use on a developer's machine).
        config = workdir / "a3mail.toml"
        config.write_text(
            "[listeners]\n"
            + "".join(f'{name} = "tcp:0:interface=127.0.0.1"\n' for name in LISTENER_DEFAULTS)
            # The manhole (off by default) needs its key file when on.
            + f'[manhole]\nauthorized_keys = "{workdir / "manhole_keys"}"\n'
        )
        first = Server(workdir, "--config", str(config), "--data-dir", str(data))
        try:
            first.wait_for("store ready: embedded PostgreSQL")
            for _ in LISTENER_DEFAULTS:
                first.wait_for(" listening on tcp:0:interface=127.0.0.1 (127.0.0.1:")
            self.assertTrue((data / "pgdata" / "PG_VERSION").exists())
            self.assertTrue(postgres_processes(data / "pgdata"))
        finally:
            code = first.stop(signal.SIGTERM)
        # twistd re-raises the stopping signal after a clean shutdown (for supervisors).
        self.assertIn(code, (0, -signal.SIGTERM), "".join(first.lines))
        self.assertIn("embedded PostgreSQL stopped", "".join(first.lines))
        self.assertNotIn("Traceback", "".join(first.lines))
        self.assertEqual(postgres_processes(data / "pgdata"), [])
        cert = (data / "tls" / "cert.pem").read_bytes()
        self.assertEqual(os.stat(data / "tls" / "key.pem").st_mode & 0o777, 0o600)

        second = Server(workdir, "--config", str(config), "--data-dir", str(data))
        try:
            second.wait_for("store ready: embedded PostgreSQL")
        finally:
            code = second.stop(signal.SIGINT)
        self.assertIn(code, (0, -signal.SIGINT), "".join(second.lines))
        self.assertEqual((data / "tls" / "cert.pem").read_bytes(), cert)
        self.assertNotIn("Traceback", "".join(second.lines))
        self.assertEqual(postgres_processes(data / "pgdata"), [])

    def test_forced_other_reactor_is_refused_clearly(self):
        return threads.deferToThread(self._other_reactor)

    def _other_reactor(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        result = subprocess.run(
            [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "--reactor=poll", "a3mail"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn("a3mail needs the asyncio reactor", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
