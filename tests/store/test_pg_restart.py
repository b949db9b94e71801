"""PostgreSQL restarting under a running store.

The test starts a private embedded PostgreSQL (pgserver) in a temporary directory, so that it
can stop and start that server with pg_ctl without disturbing the shared test server.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial import unittest

from a3mail.store import Database, Store, StoreUnavailable
from a3mail.store import events as ev
from a3mail.store.embedded import EmbeddedPostgres
from a3mail.store.records import DeliveryStatus
from tests.store.helpers import aio, in_thread, sleep, wait_for
from tests.support.store import require_asyncio_reactor

MESSAGE = b"From: bob@remote.example\r\nSubject: after the restart\r\n\r\nHello.\r\n"
OUTAGE_LIMIT = 5.0  # an operation during the outage must fail within this many seconds
RECOVERY_LIMIT = 10.0  # ... and succeed again within this many seconds of the restart


class PostgresRestartTests(unittest.TestCase):
    timeout = 120

    async def setUp(self) -> None:  # type: ignore[override]
        require_asyncio_reactor()
        if importlib.util.find_spec("pgserver") is None:
            raise unittest.SkipTest("pgserver is not installed")
        # psycopg_pool logs every failed reconnection attempt at WARNING: expected here.
        pool_log = logging.getLogger("psycopg.pool")
        self.addCleanup(pool_log.setLevel, pool_log.level)
        pool_log.setLevel(logging.CRITICAL)
        self.tmp = Path(tempfile.mkdtemp(prefix="a3mail-pgrestart-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pgdata = self.tmp / "pgdata"
        self.embedded = EmbeddedPostgres(self.pgdata)
        self.addCleanup(self.stop_postgres_for_good)
        self.dsn = await in_thread(self.embedded.start)
        from pgserver._commands import POSTGRES_BIN_PATH  # after start(): it sets up the env
        from pgserver.utils import PostmasterInfo

        self.pg_ctl_path = POSTGRES_BIN_PATH / "pg_ctl"
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        assert info is not None and info.socket_dir is not None
        self.socket_dir = info.socket_dir

    # -- controlling the private server ---------------------------------------------------

    def pg_ctl(self, *args: str, check: bool = True) -> int:
        """Run pg_ctl on the private server as the user pgserver runs postgres as."""
        user = "pgserver" if os.geteuid() == 0 else None
        # Never a pipe for output: the postmaster would inherit it and pg_ctl would not return.
        with tempfile.TemporaryFile() as out:
            result = subprocess.run(
                [str(self.pg_ctl_path), "-D", str(self.pgdata), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                timeout=60,
                check=False,
            )
            if check and result.returncode != 0:
                out.seek(0)
                raise AssertionError(f"pg_ctl {args} failed: {out.read().decode(errors='replace')}")
        return result.returncode

    def stop_server(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop")

    def start_server(self) -> None:
        self.pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def running(self) -> bool:
        return self.pg_ctl("status", check=False) == 0

    async def stop_postgres_for_good(self) -> None:
        # pgserver only knows the first postmaster's pid: after our restart it would leave the
        # new one running, so stop it with pg_ctl as well.
        await in_thread(self.embedded.stop)
        if not hasattr(self, "pg_ctl_path"):
            return  # the server never started
        if self.pgdata.exists() and await in_thread(self.running):
            await in_thread(self.stop_server)
        self.assertFalse(await in_thread(self.running))

    # -- the test ---------------------------------------------------------------------------

    async def open_store(self) -> Store:
        db = Database(
            self.dsn,
            min_size=2,
            max_size=4,
            acquire_timeout=1.0,
            application_name=f"a3mail-pg-restart-test:{os.getpid()}",
        )
        store = Store(db, self.tmp / "data", fsync=False)
        await store.open()
        self.addCleanup(store.close)
        return store

    async def assert_unavailable_quickly(self, what: str, operation) -> None:
        started = time.monotonic()
        with self.assertRaises(StoreUnavailable, msg=what):
            await operation()
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, OUTAGE_LIMIT, f"{what} took {elapsed:.1f} s to fail")

    async def test_outage_fails_fast_and_recovery_is_automatic(self):
        store = await self.open_store()
        heard: list[ev.Event] = []
        store.events.subscribe(heard.append)
        await aio(store.events.wait_connected(10))
        await store.domains.add("example.com")
        alice = await store.accounts.add("alice@example.com")

        await in_thread(self.stop_server)

        await self.assert_unavailable_quickly("a read", lambda: store.accounts.get(alice.id))
        await self.assert_unavailable_quickly("a write", lambda: store.domains.add("b.example"))
        blob = await store.incoming(MESSAGE)
        await self.assert_unavailable_quickly(
            "a delivery", lambda: store.messages.deliver(blob, ["alice@example.com"])
        )
        self.assertEqual(list(store.blobs.account_files(alice.id)), [])
        await wait_for(lambda: not store.events.connected, 10, "the bus notices the outage")
        self.assertNotIn(ev.BUS_RECONNECTED, [e.type for e in heard])

        await in_thread(self.start_server)
        restarted = time.monotonic()

        account = None
        while account is None:
            try:
                account = await store.accounts.get(alice.id)
            except StoreUnavailable:
                if time.monotonic() - restarted > RECOVERY_LIMIT:
                    raise
                await sleep(0.1)
        self.assertEqual(account.address, "alice@example.com")
        await store.domains.add("b.example")

        await wait_for(
            lambda: ev.BUS_RECONNECTED in [e.type for e in heard],
            RECOVERY_LIMIT,
            "bus.reconnected",
        )
        self.assertTrue(store.events.connected)
        reconnected_at = [e.type for e in heard].index(ev.BUS_RECONNECTED)

        [result] = await store.messages.deliver(blob, ["alice@example.com"])
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        added = await wait_for(
            lambda: [
                e
                for e in heard[reconnected_at:]
                if e.type == ev.MESSAGE_ADDED and e.data.get("uid") == result.uid
            ],
            RECOVERY_LIMIT,
            "message.added after the restart",
        )
        self.assertEqual(added[0].data["account_id"], alice.id)
        self.assertEqual(added[0].data["mailbox_id"], result.mailbox_id)
        [info] = await store.messages.list(alice.id, result.mailbox_id)
        self.assertEqual(await store.messages.read(info), MESSAGE)
