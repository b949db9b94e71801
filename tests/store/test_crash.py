"""Crash safety: a process delivering mail is SIGKILLed at random moments.

A child process (tests/support/crash_child.py, a fresh Python on the asyncio reactor) delivers
messages with fsync on into the test schema and data directory, printing one line per
acknowledged (``DELIVERED``) recipient.  The parent kills it with SIGKILL at a random moment,
then opens a fresh Store, sweeps with grace 0 and checks that nothing acknowledged is lost and
that the index, the counters and the files agree.  Several rounds accumulate in the same
store, so later rounds also check that earlier ones stayed intact.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import sys
from pathlib import Path

from twisted.internet import error, protocol, reactor
from twisted.internet.defer import Deferred

from a3mail.store import Store
from tests.store.helpers import aio, sleep
from tests.support import pg
from tests.support.crash_child import message_for, recipients_for
from tests.support.store import StoreTestCase

ROOT = Path(__file__).resolve().parents[2]
ADDRESSES = ("crash-a@example.com", "crash-b@example.com", "crash-c@example.com")
ROUNDS = 5
_TOKEN = re.compile(rb"\r\nX-Crash-Token: (\S+)\r\n")


class ChildProtocol(protocol.ProcessProtocol):
    """Collects the child's stdout lines and stderr; fires when it has acknowledged one."""

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.first_ack: Deferred[None] = Deferred()
        self.ended: Deferred[protocol.ProcessProtocol] = Deferred()
        self.reason = None

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b"\n" in self.out and not self.first_ack.called:
            self.first_ack.callback(None)

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason) -> None:
        self.reason = reason
        if not self.first_ack.called:
            self.first_ack.errback(
                AssertionError(f"child ended before acknowledging: {self.err.decode()[-3000:]}")
            )
        self.ended.callback(self)

    def kill(self) -> None:
        with contextlib.suppress(error.ProcessExitedAlready):
            self.transport.signalProcess("KILL")

    def acknowledged(self) -> set[tuple[str, str]]:
        """(token, address) of every complete line (a line cut by the kill does not count)."""
        complete = self.out.rpartition(b"\n")[0]
        acks = set()
        for line in complete.decode().splitlines():
            token, address = line.split()
            acks.add((token, address))
        return acks


class CrashTests(StoreTestCase):
    timeout = 180

    async def test_kill_at_random_moments_loses_nothing_acknowledged(self):
        seed = int(os.environ.get("A3MAIL_CRASH_SEED") or random.SystemRandom().randrange(2**32))
        rng = random.Random(seed)
        accounts = [await self.make_account(a) for a in ADDRESSES]
        acknowledged: set[tuple[str, str]] = set()
        for n in range(ROUNDS):
            delay = rng.uniform(0.3, 1.5)
            try:
                acks = await self.run_child_and_kill(f"r{n}", delay)
                self.assertTrue(acks)
                acknowledged |= acks
                await self.check_after_crash(accounts, acknowledged)
            except Exception as e:
                raise AssertionError(
                    f"round {n} (kill {delay:.2f} s after the first ack; A3MAIL_CRASH_SEED={seed})"
                    f" failed: {e!r}"
                ) from e

    async def run_child_and_kill(self, prefix: str, delay: float) -> set[tuple[str, str]]:
        """Start a child delivering mail, SIGKILL it *delay* s after its first ack, reap it,
        wait until its database sessions are gone; return what it acknowledged."""
        child = ChildProtocol()
        app_name = f"a3mail-crash-child:{os.getpid()}:{prefix}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        args = [
            sys.executable,
            "-m",
            "tests.support.crash_child",
            pg.dsn(),
            self.schema,
            str(self.data_dir),
            app_name,
            prefix,
            *ADDRESSES,
        ]
        reactor.spawnProcess(child, sys.executable, args, env=env, path=str(ROOT))
        try:
            await child.first_ack.addTimeout(30, reactor)
            await sleep(delay)
        finally:
            child.kill()
            await child.ended  # reaped, and every byte of its stdout has been read
        self.assertEqual(
            getattr(child.reason.value, "signal", None),
            signal.SIGKILL,
            f"child did not die of SIGKILL: {child.reason.value!r} {child.err.decode()[-3000:]}",
        )
        # A transaction the child had sent COMMIT for may still be finishing in its backend:
        # sweeping with grace 0 is only right once no session of the dead process remains.
        await self.wait_sessions_gone(app_name)
        return child.acknowledged()

    async def wait_sessions_gone(self, app_name: str) -> None:
        state = {"n": None}

        async def count() -> None:
            row = await self.store.db.fetchone(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s",
                (app_name,),
            )
            state["n"] = row["n"]

        for _ in range(500):
            await aio(count())
            if state["n"] == 0:
                return
            await sleep(0.02)
        raise AssertionError(f"sessions of the killed child remain: {state['n']}")

    async def check_after_crash(self, accounts, acknowledged: set[tuple[str, str]]) -> None:
        store: Store = self.make_store()
        await store.open()
        try:
            report = await store.sweep(grace=0)
            self.assertEqual(report.missing, ())
            self.assertEqual(list(store.blobs.tmp_files()), [])
            self.assertLessEqual(set(store.blobs.account_ids_on_disk()), {a.id for a in accounts})
            stored: set[tuple[str, str]] = set()
            for account in accounts:
                stored |= await self.check_account(store, account.id)
            missing = acknowledged - stored
            self.assertEqual(missing, set(), "acknowledged deliveries were lost")
        finally:
            await store.close()

    async def check_account(self, store: Store, account_id: int) -> set[tuple[str, str]]:
        """Check one account's files, index and counters; return its (token, address)s."""
        account = await store.accounts.get(account_id)
        tokens: list[str] = []
        indexed: set[str] = set()
        used = count = 0
        for box in await store.mailboxes.list(account_id):
            infos = await store.messages.list(account_id, box.id)
            self.assertEqual(box.message_count, len(infos), box.name)
            self.assertEqual(box.total_bytes, sum(i.size for i in infos), box.name)
            self.assertEqual(box.unseen_count, len(infos), box.name)  # nothing was read
            if infos:
                self.assertGreater(box.uidnext, max(i.uid for i in infos), box.name)
                self.assertGreaterEqual(box.highestmodseq, max(i.modseq for i in infos), box.name)
            used += sum(i.size for i in infos)
            count += len(infos)
            for info in infos:
                indexed.add(info.blob_path)
                data = await store.messages.read(info)
                match = _TOKEN.search(data)
                self.assertIsNotNone(match, info.blob_path)
                token = match.group(1).decode()
                self.assertEqual(data, message_for(token), f"bytes of {token}")
                self.assertEqual(info.size, len(data))
                self.assertIn(account.address, recipients_for(token, ADDRESSES))
                tokens.append(token)
        self.assertEqual((account.used_bytes, account.message_count), (used, count))
        self.assertEqual(len(tokens), len(set(tokens)), "a message was delivered twice")
        # Every file in the account's directory is a message of the index, and vice versa.
        self.assertEqual(set(store.blobs.account_files(account_id)), indexed)
        return {(t, account.address) for t in tokens}
