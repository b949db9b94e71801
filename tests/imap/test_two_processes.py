"""Two a3mail processes on one database: a session here IDLEs while a client of a real
``twistd a3mail`` child process (same database schema, same data directory) appends,
flags and expunges; the changes arrive here through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import imaplib
import re
import signal
import subprocess
from pathlib import Path

from twisted.internet import threads

from a3mail.config import LISTENER_DEFAULTS
from tests.imap.support import MESSAGE, PASSWORD, ImapTestCase
from tests.imap.test_updates import wait_for
from tests.support import pg
from tests.support.twistd import TwistdProcess

USER = "alice@example.com"


class ChildServer(TwistdProcess):
    """``twistd -n a3mail`` with only the ``imap`` listener, on the test schema."""

    def __init__(self, workdir: Path, schema: str, data_dir: Path) -> None:
        config = workdir / "a3mail.toml"
        listeners = "".join(
            f'{name} = "{"tcp:0:interface=127.0.0.1" if name == "imap" else ""}"\n'
            for name in LISTENER_DEFAULTS
        )
        config.write_text(
            f'data_dir = "{data_dir}"\n'
            f'[database]\ndsn = "{pg.dsn()}"\nschema = "{schema}"\n'
            f"[auth]\nallow_plaintext_loopback = true\nfailure_delay = 0\n"
            f"[listeners]\n{listeners}"
        )
        super().__init__(workdir, "--config", str(config), PYTHONUNBUFFERED="1")

    def port(self, timeout: float = 60) -> int:
        """The imap listener's port, from the child's log."""
        match = self.first_match(
            lambda line: re.search(r"imap listening on .*\(127\.0\.0\.1:(\d+)", line), timeout
        )
        if match is not None:
            return int(match.group(1))
        raise AssertionError("no imap listener in:\n" + "".join(self.lines))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


class TwoProcessTests(ImapTestCase):
    async def test_idle_here_sees_changes_made_through_another_process(self):
        await self.deliver()
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir(parents=True)
        child = ChildServer(workdir, self.schema, self.data_dir)
        self.addCleanup(threads.deferToThread, child.stop)
        port = await threads.deferToThread(child.port)
        await wait_for(lambda: self.store.events.connected)

        idler = await self.session()
        transport = idler.transport
        out = await self.send(idler, b"i IDLE\r\n")
        self.assertEqual(out, b"+ idling\r\n")

        def other_client() -> None:
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            imap.login(USER, PASSWORD)
            imap.select("INBOX")
            imap.append("INBOX", None, None, MESSAGE)
            imap.store("1", "+FLAGS", "(\\Flagged)")
            imap.store("2", "+FLAGS", "(\\Deleted)")
            imap.expunge()
            imap.logout()

        await threads.deferToThread(other_client)
        await wait_for(lambda: b"* 2 EXPUNGE\r\n" in transport.value(), timeout=10)
        pushed = transport.value()
        self.assertIn(b"* 2 EXISTS\r\n", pushed)
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\n", pushed)
        out = await self.send(idler, b"DONE\r\n")
        self.assertEqual(out, b"i OK IDLE terminated\r\n")
