"""The embedded PostgreSQL: starting slowly, and stopping when its last live user lets go.

Each test runs a private pgserver in a temporary directory (not the shared test server).
These are synchronous tests: EmbeddedPostgres.start blocks, as it does in twistd before the
reactor runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from twisted.trial import unittest

from a3mail.store.embedded import EmbeddedPostgres, import_pgserver, server_state


def _dead_pid() -> int:
    """The process id of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


class EmbeddedStartTests(unittest.TestCase):
    timeout = 120

    def setUp(self) -> None:
        if importlib.util.find_spec("pgserver") is None:
            raise unittest.SkipTest("pgserver is not installed")
        self.tmp = Path(tempfile.mkdtemp(prefix="a3mail-embedded-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pgdata = self.tmp / "pgdata"
        self.embedded = EmbeddedPostgres(self.pgdata, start_timeout=60)
        self.addCleanup(self.embedded.stop)

    def assert_answers(self, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT 1").fetchone()
        self.assertEqual(row, (1,))

    def test_waits_for_a_server_pg_ctl_gave_up_on(self) -> None:
        """pg_ctl timing out (crash recovery, a slow disk) is waited out, not fatal.

        The patched pg_ctl launches the real server without waiting for it (-W) and then
        reports a timeout, as pgserver's ten-second limit does during a long recovery: the
        server is still starting when EmbeddedPostgres learns of the timeout.
        """
        ps = import_pgserver().postgres_server

        real_pg_ctl = ps.pg_ctl
        calls: list[list[str]] = []

        def pg_ctl_that_gives_up(args: list[str], **kwargs: Any) -> str:
            calls.append(list(args))
            if "start" in args:
                real_pg_ctl(["-W" if a == "-w" else a for a in args], **kwargs)
                raise subprocess.TimeoutExpired(cmd="pg_ctl", timeout=kwargs.get("timeout", 0))
            return str(real_pg_ctl(args, **kwargs))

        self.patch(ps, "pg_ctl", pg_ctl_that_gives_up)
        dsn = self.embedded.start()
        self.assert_answers(dsn)
        self.assertEqual(server_state(self.pgdata), "ready")
        self.assertEqual(sum("start" in c for c in calls), 1, "the server was started once")

    def test_a_server_that_dies_while_starting_is_reported(self) -> None:
        ps = import_pgserver().postgres_server

        def pg_ctl_that_starts_nothing(args: list[str], **kwargs: Any) -> str:
            raise subprocess.TimeoutExpired(cmd="pg_ctl", timeout=kwargs.get("timeout", 0))

        self.patch(ps, "pg_ctl", pg_ctl_that_starts_nothing)
        with self.assertRaises(Exception) as raised:
            self.embedded.start()
        self.assertIn("stopped while starting", str(raised.exception))
        self.assertFalse(self.embedded.running)

    def test_last_live_user_stops_the_server_despite_dead_ones(self) -> None:
        """A user killed without letting go (SIGKILL) does not keep the server running."""
        self.embedded.start()
        users = self.pgdata / ".handle_pids.json"
        listed = json.loads(users.read_text())
        users.write_text(json.dumps([_dead_pid(), *listed]))
        self.embedded.stop()
        self.assertEqual(server_state(self.pgdata), "gone")

    def test_dead_users_are_dropped_when_joining(self) -> None:
        self.embedded.start()
        self.embedded.stop()
        dead = _dead_pid()
        (self.pgdata / ".handle_pids.json").write_text(json.dumps([dead]))
        self.embedded.start()
        self.assertNotIn(dead, json.loads((self.pgdata / ".handle_pids.json").read_text()))

    def test_stale_pid_file_naming_another_process_is_gone(self) -> None:
        """A pid file copied with a snapshot may name an unrelated live process."""
        self.pgdata.mkdir()
        fields = [str(os.getpid()), str(self.pgdata), "1700000000", "5432", "/tmp", "", "0 0"]
        (self.pgdata / "postmaster.pid").write_text("\n".join([*fields, "ready"]) + "\n")
        self.assertEqual(server_state(self.pgdata), "gone")
