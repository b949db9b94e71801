"""Real sockets on loopback with real clients: Python's imaplib (plain on loopback,
STARTTLS, imaps) and curl; a raw client IDLEs while imaplib changes the mailbox.  The
listeners are built as the service builds them: ``listeners.PROTOCOL_FACTORIES[name]``,
wrapped in TLS for implicit-TLS names."""

from __future__ import annotations

import imaplib
import re
import shutil
import socket
from pathlib import Path
from typing import Any, BinaryIO

from twisted.trial.unittest import SkipTest

from a3mail.imap.server import IMAPServer
from tests.imap.support import MESSAGE, PASSWORD, ImapTestCase, message
from tests.store.helpers import in_thread
from tests.support.sockets import LoopbackListeners

USER = "alice@example.com"


def raw_login(port: int, then: bytes = b"") -> tuple[socket.socket, BinaryIO]:
    """A raw client connected to *port*, past the greeting, that has sent LOGIN (and
    *then*); the caller reads the answers from the returned reader."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode() + then)
    return sock, reader


class SocketTestCase(LoopbackListeners, ImapTestCase):
    """Listens with the production factories on 127.0.0.1, port 0."""

    allow_plaintext_loopback = True

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.start_listeners("imap.example.com", ("imap", "imaps"))

    def session_closed(self, session: IMAPServer) -> bool:
        """Whether the server side of ``session`` is gone."""
        return session._closed


class ImaplibTests(SocketTestCase):
    async def test_a_whole_session(self):
        await self.deliver(message("apples"))
        await self.deliver(message("pears"))
        await self.store.mailboxes.create(self.alice.id, "Projects")
        port = self.ports["imap"]

        def client() -> dict[str, Any]:
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            r: dict[str, Any] = {"caps": imap.capabilities}
            try:
                r["login"] = imap.login(USER, PASSWORD)
                r["list"] = imap.list()
                r["select"] = imap.select("INBOX")
                r["append"] = imap.append("INBOX", None, None, MESSAGE)
                r["append_flags"] = imap.append(
                    "INBOX", "(\\Flagged)", imaplib.Time2Internaldate(0), MESSAGE
                )
                r["noop"] = imap.noop()
                r["fetch"] = imap.fetch("3", "(UID RFC822)")
                r["uid_fetch"] = imap.uid("FETCH", "1:*", "(FLAGS)")
                r["search"] = imap.search(None, "SUBJECT", "apples")
                r["uid_search"] = imap.uid("SEARCH", "FLAGGED")
                r["sort"] = imap.sort("(REVERSE SUBJECT)", "UTF-8", "ALL")
                r["thread"] = imap.thread("REFERENCES", "UTF-8", "ALL")
                r["store"] = imap.store("1", "+FLAGS", "(\\Deleted)")
                r["copy"] = imap.copy("2", "Projects")
                r["move"] = imap.uid("MOVE", "3", "Projects")
                r["expunge"] = imap.expunge()
                r["status"] = imap.status("Projects", "(MESSAGES UIDNEXT)")
                r["close"] = imap.close()
                r["logout"] = imap.logout()
            finally:
                if imap.state != "LOGOUT":
                    imap.shutdown()
            return r

        r = await in_thread(client)
        self.assertIn("IDLE", r["caps"])
        self.assertEqual(r["login"][0], "OK")
        self.assertIn(b'(\\HasNoChildren) "/" "Projects"', r["list"][1])
        self.assertEqual(r["select"][1][0], b"2")  # imaplib appends later EXISTS here
        self.assertEqual(r["append"][0], "OK")
        self.assertIn(b"[APPENDUID ", r["append"][1][0])
        self.assertEqual(r["fetch"][1][0][1], MESSAGE)
        self.assertEqual(len(r["uid_fetch"][1]), 4)
        self.assertEqual(r["search"], ("OK", [b"1"]))
        self.assertEqual(r["uid_search"], ("OK", [b"4"]))
        self.assertEqual(r["sort"], ("OK", [b"2 3 4 1"]))  # pears, hello, hello, apples
        self.assertEqual(r["thread"][0], "OK")
        [threads] = r["thread"][1]
        self.assertEqual(sorted(re.findall(rb"\d+", threads)), [b"1", b"2", b"3", b"4"])
        self.assertEqual(r["copy"][0], "OK")
        self.assertEqual(r["move"][0], "OK")
        self.assertEqual(r["expunge"], ("OK", [b"3", b"1"]))  # MOVE's, then EXPUNGE's
        self.assertEqual(r["status"], ("OK", [b'"Projects" (MESSAGES 2 UIDNEXT 3)']))
        self.assertEqual(r["logout"][0], "BYE")

    async def test_idle_sees_another_clients_changes(self):
        await self.deliver()
        port = self.ports["imap"]

        def idler() -> bytes:
            sock, reader = raw_login(port, b"b SELECT INBOX\r\nc IDLE\r\n")
            seen = b""
            while not seen.endswith(b"+ idling\r\n"):
                seen += reader.readline()
            other = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            other.login(USER, PASSWORD)
            other.select("INBOX")
            other.append("INBOX", None, None, MESSAGE)
            other.store("1", "+FLAGS", "(\\Deleted)")
            other.expunge()
            other.logout()
            pushed = b""
            while b"EXPUNGE" not in pushed:
                pushed += reader.readline()
            sock.sendall(b"DONE\r\nd LOGOUT\r\n")
            while not pushed.endswith(b"d OK LOGOUT completed\r\n"):
                pushed += reader.readline()
            sock.close()
            return pushed

        pushed = await in_thread(idler)
        self.assertIn(b"* 2 EXISTS\r\n", pushed)
        self.assertIn(b"* 1 EXPUNGE\r\n", pushed)
        self.assertIn(b"c OK IDLE terminated\r\n", pushed)

    async def test_multiappend_with_synchronizing_literals_over_a_socket(self):
        """Each ``{n}`` waits for the server's ``+`` over a real connection; imaplib then
        sees both messages."""
        port = self.ports["imap"]
        second = MESSAGE.replace(b"hello", b"second")

        def client() -> tuple[bytes, Any]:
            sock, reader = raw_login(port)
            reader.readline()
            sock.sendall(b"b APPEND INBOX (\\Seen) {%d}\r\n" % len(MESSAGE))
            first_go = reader.readline()
            sock.sendall(MESSAGE + b" {%d}\r\n" % len(second))
            second_go = reader.readline()
            sock.sendall(second + b"\r\n")
            done = reader.readline()
            sock.close()
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            imap.login(USER, PASSWORD)
            imap.select("INBOX")
            fetched = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
            imap.logout()
            return first_go + second_go + done, fetched

        answers, fetched = await in_thread(client)
        self.assertRegex(
            answers, rb"^\+ .*\r\n\+ .*\r\nb OK \[APPENDUID \d+ 1:2\] APPEND completed\r\n$"
        )
        status, data = fetched
        self.assertEqual(status, "OK")
        bodies = [part[1] for part in data if isinstance(part, tuple)]
        self.assertEqual(bodies, [MESSAGE, second])
        self.assertIn(b"\\Seen", data[0][0])

    async def test_qresync_resynchronises_an_imaplib_client(self):
        """A client that knew the mailbox at some MODSEQ comes back with QRESYNC: imaplib
        gets the expunged UID as VANISHED (EARLIER) and the changed flags as FETCH."""
        for _ in range(3):
            await self.deliver()
        port = self.ports["imap"]

        def client() -> dict[str, Any]:
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            imap.login(USER, PASSWORD)
            imap.select("INBOX")
            uidvalidity = imap.response("UIDVALIDITY")[1][0]
            modseq = imap.response("HIGHESTMODSEQ")[1][0]
            imap.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
            imap.expunge()
            imap.uid("STORE", "3", "+FLAGS", "(\\Answered)")
            imap.logout()
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            imap.login(USER, PASSWORD)
            r: dict[str, Any] = {"enable": imap._simple_command("ENABLE", "QRESYNC")}
            r["enabled"] = imap.response("ENABLED")
            qresync = b"(QRESYNC (%s %s))" % (uidvalidity, modseq)
            r["select"] = imap._simple_command("SELECT", "INBOX", qresync.decode())
            r["vanished"] = imap.response("VANISHED")
            r["fetch"] = imap.response("FETCH")
            imap.state = "SELECTED"  # imaplib only tracks its own select()
            imap.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
            r["expunge"] = imap.expunge()
            r["vanished_now"] = imap.response("VANISHED")
            imap.logout()
            return r

        r = await in_thread(client)
        self.assertEqual(r["enable"][0], "OK")
        self.assertEqual(r["enabled"][1], [b"QRESYNC"])
        self.assertEqual(r["select"][0], "OK")
        self.assertEqual(r["vanished"][1], [b"(EARLIER) 1"])
        [fetch] = r["fetch"][1]
        self.assertRegex(fetch, rb"^2 \(FLAGS \(\\Answered\) UID 3 MODSEQ \(\d+\)\)$")
        self.assertEqual(r["expunge"], ("OK", [None]))  # no "* n EXPUNGE" any more
        self.assertEqual(r["vanished_now"][1], [b"2"])


class TLSTests(SocketTestCase):
    allow_plaintext_loopback = False

    async def test_starttls_then_login(self):
        await self.deliver()
        port = self.ports["imap"]
        context = self.client_context()

        def client() -> dict[str, Any]:
            imap = imaplib.IMAP4("localhost", port, timeout=10)
            r: dict[str, Any] = {"before": imap.capabilities}
            try:
                try:
                    imap.login(USER, PASSWORD)
                except imaplib.IMAP4.error as e:
                    r["refused"] = str(e)
                r["starttls"] = imap.starttls(context)
                r["after"] = imap.capabilities
                r["login"] = imap.login(USER, PASSWORD)
                r["select"] = imap.select("INBOX")
                imap.logout()
            finally:
                if imap.state != "LOGOUT":
                    imap.shutdown()
            return r

        r = await in_thread(client)
        self.assertIn("LOGINDISABLED", r["before"])
        self.assertIn("PRIVACYREQUIRED", r["refused"])
        self.assertIn("AUTH=PLAIN", r["after"])
        self.assertEqual(r["select"], ("OK", [b"1"]))

    async def test_imaps(self):
        port = self.ports["imaps"]
        context = self.client_context()

        def client() -> Any:
            imap = imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=10)
            try:
                imap.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
                return imap.select("INBOX")
            finally:
                imap.logout()

        self.assertEqual(await in_thread(client), ("OK", [b"0"]))


class CurlTests(SocketTestCase):
    allow_plaintext_loopback = False

    async def setUp(self) -> None:  # type: ignore[override]
        if shutil.which("curl") is None:
            raise SkipTest("curl is not installed (tests/support/ensure-tools.sh installs it)")
        await super().setUp()

    async def test_curl_lists_and_fetches_over_starttls(self):
        uid = await self.deliver()
        base = f"imap://localhost:{self.ports['imap']}"
        common = (
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            str(self.cert),
            "-u",
            f"{USER}:{PASSWORD}",
        )
        listing = await self.run_tool(*common, base + "/")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertIn(b'"INBOX"', listing.stdout)
        fetched = await self.run_tool(*common, f"{base}/INBOX;UID={uid}")
        self.assertEqual(fetched.returncode, 0, fetched.stderr)
        self.assertEqual(fetched.stdout, MESSAGE)
        search = await self.run_tool(*common, f"{base}/INBOX?SUBJECT%20hello")
        self.assertEqual(search.returncode, 0, search.stderr)
        self.assertTrue(re.search(rb"\* SEARCH 1\b", search.stdout), search.stdout)

    async def test_curl_over_imaps(self):
        await self.deliver()
        url = (
            f"imaps://localhost:{self.ports['imaps']}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)"
        )
        out = await self.run_tool(
            "curl", "-sS", "--cacert", str(self.cert), "-u", f"{USER}:{PASSWORD}", url
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"Subject: hello\r\n\r\n")


class MbsyncTests(SocketTestCase):
    """Two-way sync with mbsync (isync): server to maildir, then local changes back."""

    allow_plaintext_loopback = False

    def write_config(self, root: Path) -> Path:
        config = root / "mbsyncrc"
        config.write_text(
            f"IMAPAccount a3\nHost localhost\nPort {self.ports['imap']}\nUser {USER}\n"
            f'Pass "{PASSWORD}"\nSSLType STARTTLS\nCertificateFile {self.cert}\n\n'
            "IMAPStore remote\nAccount a3\n\n"
            f"MaildirStore local\nPath {root}/mail/\nInbox {root}/mail/INBOX\n"
            "SubFolders Verbatim\n\n"
            "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
            "Expunge Both\nSyncState *\n"
        )
        return config

    async def test_two_way_sync(self):
        if not shutil.which("mbsync"):
            raise SkipTest("mbsync is not installed (tests/support/ensure-tools.sh installs isync)")
        await self.deliver(message("first"))
        await self.deliver(message("second"))
        await self.store.mailboxes.create(self.alice.id, "Projects")
        blob = await self.store.incoming(message("project"))
        await self.store.messages.append(self.alice.id, "Projects", blob)
        root = Path(self.mktemp()).absolute()
        (root / "mail").mkdir(parents=True)
        config = self.write_config(root)
        run = await self.run_tool("mbsync", "-c", str(config), "-a")
        self.assertEqual(run.returncode, 0, run.stderr)
        inbox_files = sorted((root / "mail" / "INBOX").glob("*/*"))
        self.assertEqual(len(inbox_files), 2)
        self.assertEqual(len(list((root / "mail" / "Projects").glob("*/*"))), 1)

        # Local changes: one message read, one deleted, one new.
        by_subject = {
            re.search(rb"Subject: ([^\r\n]+)", f.read_bytes()).group(1): f for f in inbox_files
        }
        first = by_subject[b"first"]
        first.rename(first.parent.parent / "cur" / (first.name.split(":")[0] + ":2,S"))
        by_subject[b"second"].unlink()
        (root / "mail" / "INBOX" / "new" / "1700000000.local.host").write_bytes(
            message("written locally")
        )
        run = await self.run_tool("mbsync", "-c", str(config), "-a")
        self.assertEqual(run.returncode, 0, run.stderr)

        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        infos = await self.store.messages.list(self.alice.id, inbox.id)
        self.assertEqual(
            sorted((i.subject, i.flag_names) for i in infos),
            [("first", ("\\Seen",)), ("written locally", ())],
        )
