"""a3mail's IMAP4rev1 server: twisted.mail's ``IMAP4Server``, its reading, dispatch and
commands replaced over the store.

What changes against ``twisted.mail.imap4.IMAP4Server`` (each bug in
../shared/TWISTED-MAIL-NOTES.md has a regression test in
``tests/imap/test_twisted_regressions.py``):

- Commands are read by :mod:`a3mail.imap.framing` and run strictly one at a time, in
  order, whatever the store's Deferreds do (pipelining); limits on lines and literals are
  checked before anything is read or allocated; APPEND literals spool to a file.
- STARTTLS drops whatever plaintext was pipelined after it; passwords only over TLS
  (or on loopback if configured); failed logins go through the LoginGuard.
- Only ``DONE`` ends IDLE; other sessions' changes arrive as untagged responses.
- No exception text ever reaches the client (``NO [SERVERBUG]``, logged here).

The commands live in :mod:`a3mail.imap.commands_auth`, :mod:`a3mail.imap.commands_mailbox`
and :mod:`a3mail.imap.commands_selected`; this module is the session engine.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import INegotiated, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.mail import imap4
from twisted.python.failure import Failure

from a3mail.imap import framing
from a3mail.imap.commands_auth import AuthCommands
from a3mail.imap.commands_mailbox import MailboxCommands
from a3mail.imap.commands_selected import SelectedCommands
from a3mail.imap.compress import Deflate
from a3mail.imap.lexer import tokenize
from a3mail.imap.selected import SelectedMailbox
from a3mail.imap.states import State
from a3mail.imap.tcp import no_delay, quick_ack
from a3mail.imap.tokens import ImapSyntaxError, Token
from a3mail.imap.wire import BadMailboxName
from a3mail.logs import get_logger
from a3mail.store.records import AlreadyExists, Conflict, InvalidName, NotFound, OverQuota

log = get_logger(__name__)

PROTOCOL_NAME = "imap"

# Stop reading the socket while this much unprocessed input is buffered.
MAX_BUFFERED = 256 * 1024


Handler = Callable[[Any, bytes, list[Token], framing.Command], Awaitable[bytes | None]]

# Commands during which EXPUNGE responses must not be sent (RFC 3501 7.4.1).
NO_EXPUNGE_DURING = frozenset({b"FETCH", b"STORE", b"SEARCH", b"SORT", b"THREAD"})


class IMAPServer(imap4.IMAP4Server, AuthCommands, MailboxCommands, SelectedCommands):
    """One IMAP session.  Its factory is an :class:`a3mail.imap.factory.IMAPFactory`."""

    factory: Any
    transport: Any

    def __init__(self) -> None:
        super().__init__()
        self.phase = State.NOT_AUTHENTICATED
        self.secure = False
        self.account: Any = None
        self.selected: SelectedMailbox | None = None
        self.enabled: set[bytes] = set()
        self.condstore = False
        self.qresync = False
        self.saved_uids: list[int] = []
        self.deflate: Deflate | None = None
        self.reader: framing.CommandReader | None = None
        self._busy = False
        self._pumping = False
        self._paused = False
        self._closed = False
        self._line_waiter: Deferred[Any] | None = None
        self._idle_waiters: list[Deferred[None]] = []

    # -- connection ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet with the capabilities and start the timer."""
        settings = self.factory.settings
        self.reader = framing.CommandReader(settings.limits())
        self.callLater = self.factory.clock.callLater  # type: ignore[method-assign]
        self.secure = INegotiated.providedBy(self.transport) or ISSLTransport.providedBy(
            self.transport
        )
        self.setTimeout(settings.login_timeout)
        no_delay(self.transport)
        self.factory.metrics.connection_opened(PROTOCOL_NAME)
        self.send(b"* OK [CAPABILITY %s] a3mail IMAP4rev1 ready\r\n" % self.capability_string())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Forget the session: release the selected view, drop buffered input."""
        if not self._closed:
            self.factory.metrics.connection_closed(PROTOCOL_NAME)
        self._closed = True
        self.phase = State.LOGOUT
        self.setTimeout(None)
        if self.reader is not None:
            self.reader.discard()
        self.deselect()
        waiter, self._line_waiter = self._line_waiter, None
        if waiter is not None:
            waiter.callback(None)
        release = getattr(self.factory, "released", None)
        if release is not None:
            release(self)
        self._wake_idle_waiters()

    def timeoutConnection(self) -> None:
        """Autologout (TimeoutMixin)."""
        log.info("imap session from {peer} timed out", peer=self.peer_ip())
        self.send(b"* BYE Autologout; idle for too long\r\n")
        self.close()

    def close(self) -> None:
        """End the session."""
        self.phase = State.LOGOUT
        if self.reader is not None:
            self.reader.discard()
        self._resume()
        self.transport.loseConnection()

    # -- input --------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Buffer input and run what is complete."""
        if self._closed or self.phase is State.LOGOUT or self.reader is None:
            return
        self.resetTimeout()
        if self.deflate is not None:
            self.deflate.add(data)
            if not self._inflate():
                return
        else:
            self.reader.feed(data)
        if self._input_waiting() and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._pump()
        if self._mid_command():
            quick_ack(self.transport)

    def _input_waiting(self) -> bool:
        """Whether so much input is buffered (or still compressed) that reading the socket
        should pause."""
        assert self.reader is not None
        pending = self.deflate is not None and bool(self.deflate.pending)
        return len(self.reader) > MAX_BUFFERED or pending

    def _inflate(self) -> bool:
        """Inflate compressed input into the reader while it holds less than
        :data:`MAX_BUFFERED`; False (and the session ended) for a corrupt stream."""
        assert self.deflate is not None and self.reader is not None
        while self.deflate.pending and len(self.reader) <= MAX_BUFFERED:
            try:
                data = self.deflate.inflate()
            except zlib.error:
                log.info("imap: invalid compressed data from {peer}", peer=self.peer_ip())
                self.send(b"* BYE Invalid compressed data\r\n")
                self.close()
                return False
            if not data:
                break
            self.reader.feed(data)
        return True

    def _more_to_inflate(self) -> bool:
        """Compressed input is waiting and the reader has room for it."""
        assert self.reader is not None
        deflate = self.deflate
        return deflate is not None and bool(deflate.pending) and len(self.reader) <= MAX_BUFFERED

    def _mid_command(self) -> bool:
        """True when the client has sent part of a command and we wait for the rest."""
        reader = self.reader
        return (
            reader is not None
            and not self._busy
            and self._line_waiter is None
            and (reader.in_command or len(reader) > 0)
        )

    def _pump(self) -> None:
        if self._pumping or self.reader is None:
            return
        self._pumping = True
        try:
            while not self._closed and self.phase is not State.LOGOUT:
                if self.deflate is not None and not self._inflate():
                    break
                if self._line_waiter is not None:
                    line = self.reader.next_line()
                    if line is None:
                        if self._more_to_inflate():
                            continue
                        break
                    waiter, self._line_waiter = self._line_waiter, None
                    waiter.callback(line)
                    continue
                if self._busy:
                    break
                item = self.reader.next_command(self._continuation, self._spool)
                if item is None:
                    if self._more_to_inflate():
                        continue
                    break
                if isinstance(item, framing.Refusal):
                    self.send(item.tag + b" " + item.line + b"\r\n")
                    if item.fatal:
                        self.close()
                    continue
                self._busy = True
                done = Deferred.fromCoroutine(self._run(item))
                done.addErrback(self._unexpected)
                done.addBoth(self._command_done)
        finally:
            self._pumping = False
        if self.reader is not None and not self._input_waiting():
            self._resume()
        if self._waiting_for_client():
            self._wake_idle_waiters()

    def _resume(self) -> None:
        if self._paused and not self._closed:
            self._paused = False
            self.transport.resumeProducing()

    def _continuation(self) -> None:
        self.send(b"+ Ready for literal data\r\n")

    def _spool(self) -> Any:
        return self.factory.store.writer()

    def _command_done(self, _: object) -> None:
        self._busy = False
        self._pump()

    def _unexpected(self, failure: Failure) -> None:
        log.failure("imap command failed", failure)

    def read_line(self) -> Deferred[Any]:
        """The next raw line from the client (None if the connection closed)."""
        waiter: Deferred[Any] = Deferred()
        self._line_waiter = waiter
        if not self._pumping:
            self._pump()
        return waiter

    def when_idle(self) -> Deferred[None]:
        """Fires once every received command has been answered (for tests and tools)."""
        if self._closed or self._waiting_for_client():
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _waiting_for_client(self) -> bool:
        """Nothing to do until the client sends more."""
        if self.reader is None:
            return True
        if self._line_waiter is not None:
            return b"\n" not in self.reader.buffer
        return not self._busy and b"\n" not in self.reader.buffer

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- dispatch -----------------------------------------------------------------------

    async def _run(self, command: framing.Command) -> None:
        tag = command.tag
        entry = COMMANDS.get(command.name)
        started = time.perf_counter()
        try:
            if entry is None:
                self.send(tag + b" BAD Unknown command\r\n")
                return
            handler, states = entry
            if self.phase not in states:
                self.send(tag + b" BAD Command not valid in this state\r\n")
                return
            try:
                args = tokenize(command.args)
            except ImapSyntaxError as e:
                self.send(tag + b" BAD " + safe_text(e) + b"\r\n")
                return
            reply = await self._call(handler, tag, args, command)
            if reply is None or self._closed:
                return
            if self.selected is not None and self.phase is State.SELECTED:
                try:
                    await self.send_updates(allow_expunge=command.name not in NO_EXPUNGE_DURING)
                except Exception:
                    log.failure("imap: reporting mailbox changes failed")
            self.send(tag + b" " + reply + b"\r\n")
        finally:
            if entry is not None:
                self.factory.metrics.command(
                    PROTOCOL_NAME, command.name.decode("ascii"), time.perf_counter() - started
                )
            command.abort_spooled()  # what the command did not take

    async def _call(
        self, handler: Handler, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes | None:
        try:
            return await handler(self, tag, args, command)
        except ImapSyntaxError as e:
            return b"BAD " + safe_text(e)
        except BadMailboxName as e:
            return b"NO " + safe_text(e)
        except NotFound:
            return b"NO [NONEXISTENT] No such mailbox or message"
        except AlreadyExists:
            return b"NO [ALREADYEXISTS] Mailbox already exists"
        except OverQuota:
            return b"NO [OVERQUOTA] Quota exceeded"
        except (Conflict, InvalidName) as e:
            return b"NO [CANNOT] " + safe_text(e)
        except Exception:
            log.failure("imap {command} failed", command=command.name.decode("ascii", "replace"))
            return b"NO [SERVERBUG] Internal error; the administrator has been told"

    # -- output -------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write raw protocol bytes."""
        if not self._closed:
            self.transport.write(data if self.deflate is None else self.deflate.compress(data))

    async def send_updates(self, *, allow_expunge: bool = True) -> None:
        """Untagged responses for changes to the selected mailbox since the last ones."""
        view = self.selected
        if view is None:
            return
        if view.deleted:
            self.send(b"* BYE Selected mailbox was deleted\r\n")
            self.close()
            return
        lines = await view.updates(
            allow_expunge=allow_expunge, condstore=self.condstore, qresync=self.qresync
        )
        if lines:
            self.send(b"".join(lines))

    def deselect(self) -> None:
        """Leave the selected state (keeping the session authenticated)."""
        view, self.selected = self.selected, None
        self.saved_uids = []  # RFC 5182 2.1: $ is empty in a newly selected mailbox
        if view is not None:
            view.close()
        if self.phase is State.SELECTED:
            self.phase = State.AUTHENTICATED

    # -- helpers ------------------------------------------------------------------------

    def peer_ip(self) -> str | None:
        """The client's IP address."""
        peer = self.transport.getPeer() if self.transport is not None else None
        host = getattr(peer, "host", None)
        return host if isinstance(host, str) else None


def safe_text(error: Exception) -> bytes:
    """An error's message for the client: printable ASCII, one line, bounded."""
    text = str(error).encode("ascii", "replace")[:200]
    return bytes(c if 0x20 <= c < 0x7F else 0x3F for c in text) or b"Error"


_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SELECTED = frozenset({State.SELECTED})

COMMANDS: dict[bytes, tuple[Handler, frozenset[State]]] = {
    b"CAPABILITY": (IMAPServer.cmd_capability, _ANY),
    b"NOOP": (IMAPServer.cmd_noop, _ANY),
    b"LOGOUT": (IMAPServer.cmd_logout, _ANY),
    b"ID": (IMAPServer.cmd_id, _ANY),
    b"STARTTLS": (IMAPServer.cmd_starttls, _NOT_AUTH),
    b"COMPRESS": (IMAPServer.cmd_compress, _AUTH),
    b"LOGIN": (IMAPServer.cmd_login, _NOT_AUTH),
    b"AUTHENTICATE": (IMAPServer.cmd_authenticate, _NOT_AUTH),
    b"ENABLE": (IMAPServer.cmd_enable, _AUTH),
    b"NAMESPACE": (IMAPServer.cmd_namespace, _AUTH),
    b"SELECT": (IMAPServer.cmd_select, _AUTH),
    b"EXAMINE": (IMAPServer.cmd_examine, _AUTH),
    b"CREATE": (IMAPServer.cmd_create, _AUTH),
    b"DELETE": (IMAPServer.cmd_delete, _AUTH),
    b"RENAME": (IMAPServer.cmd_rename, _AUTH),
    b"SUBSCRIBE": (IMAPServer.cmd_subscribe, _AUTH),
    b"UNSUBSCRIBE": (IMAPServer.cmd_unsubscribe, _AUTH),
    b"LIST": (IMAPServer.cmd_list, _AUTH),
    b"LSUB": (IMAPServer.cmd_lsub, _AUTH),
    b"STATUS": (IMAPServer.cmd_status, _AUTH),
    b"APPEND": (IMAPServer.cmd_append, _AUTH),
    b"GETQUOTAROOT": (IMAPServer.cmd_getquotaroot, _AUTH),
    b"GETQUOTA": (IMAPServer.cmd_getquota, _AUTH),
    b"SETQUOTA": (IMAPServer.cmd_setquota, _AUTH),
    b"IDLE": (IMAPServer.cmd_idle, _AUTH),
    b"CHECK": (IMAPServer.cmd_check, _SELECTED),
    b"CLOSE": (IMAPServer.cmd_close, _SELECTED),
    b"UNSELECT": (IMAPServer.cmd_unselect, _SELECTED),
    b"EXPUNGE": (IMAPServer.cmd_expunge, _SELECTED),
    b"UID EXPUNGE": (IMAPServer.cmd_uid_expunge, _SELECTED),
    b"SEARCH": (IMAPServer.cmd_search, _SELECTED),
    b"UID SEARCH": (IMAPServer.cmd_uid_search, _SELECTED),
    b"SORT": (IMAPServer.cmd_sort, _SELECTED),
    b"UID SORT": (IMAPServer.cmd_uid_sort, _SELECTED),
    b"THREAD": (IMAPServer.cmd_thread, _SELECTED),
    b"UID THREAD": (IMAPServer.cmd_uid_thread, _SELECTED),
    b"FETCH": (IMAPServer.cmd_fetch, _SELECTED),
    b"UID FETCH": (IMAPServer.cmd_uid_fetch, _SELECTED),
    b"STORE": (IMAPServer.cmd_store, _SELECTED),
    b"UID STORE": (IMAPServer.cmd_uid_store, _SELECTED),
    b"COPY": (IMAPServer.cmd_copy, _SELECTED),
    b"UID COPY": (IMAPServer.cmd_uid_copy, _SELECTED),
    b"MOVE": (IMAPServer.cmd_move, _SELECTED),
    b"UID MOVE": (IMAPServer.cmd_uid_move, _SELECTED),
}
