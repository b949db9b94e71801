"""A queue runner killed (SIGKILL) in the middle of a delivery loses nothing: another
runner takes the entry over once the dead one's lease has expired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.outbound.support import OutboundTestCase, ScriptedFactory
from tests.store.helpers import in_thread, sleep, wait_for
from tests.support import pg

ROOT = Path(__file__).resolve().parent.parent.parent


class KilledRunnerTests(OutboundTestCase):
    timeout = 60

    async def test_entry_of_a_killed_runner_is_delivered_after_its_lease_expires(self):
        server = ScriptedFactory([b"", b"250 2.0.0 ok"])  # the first DATA is never answered
        port = self.listen(server)
        [entry_id] = await self.queue()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.outbound.runner_child",
                pg.dsn(),
                self.schema,
                str(self.data_dir),
                str(port),
            ],
            cwd=str(ROOT),
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: child.poll() is None and child.kill())
        await wait_for(lambda: server.data_ends == 1, 20, "the child sends the message")
        entry = await self.store.queue.get(entry_id)
        self.assertEqual((entry.state, entry.leased_by), ("sending", "child"))
        os.kill(child.pid, signal.SIGKILL)
        await in_thread(child.wait)
        self.assertEqual(server.received, [])

        runner = self.make_runner(port, worker="survivor")
        self.assertEqual(await self.run_round(runner), 0)  # the lease has not expired yet
        for _ in range(100):
            if await self.run_round(runner):
                break
            await sleep(0.1)
        self.assertEqual(len(server.received), 1)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(self.queue_files(), [])
