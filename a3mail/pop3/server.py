"""a3mail's POP3 server: Twisted's ``POP3`` protocol class, fixed and extended.

What changes against ``twisted.mail.pop3.POP3`` (each has a regression test in
``tests/pop3/test_twisted_regressions.py``):

- RETR/TOP stream the stored CRLF bytes unchanged, dot-stuffed with state carried across
  chunks (Twisted converts LF to CRLF, giving ``\\r\\r\\n``, and forgets line starts at
  its 16 KiB chunk boundaries, so a ``.`` line there ends the message early).
- DELE validates its argument and QUIT commits the deletions in one store transaction,
  answering ``+OK`` only after the commit (Twisted's are synchronous and unchecked).
- CAPA lists exactly what is implemented (no ``CELERITY AUSPEX POTENCE``); STLS (RFC 2595)
  with plaintext pipelined after it discarded; no APOP (it needs plaintext passwords).
- Passwords (USER/PASS, AUTH PLAIN/LOGIN) only over TLS, unless configured for loopback.
- Commands run strictly in order (PIPELINING); bad input gets ``-ERR`` and the session goes
  on; no exception text ever reaches the client.

Sessions lock the maildrop (one POP3 session per account, across processes) with a lock
held in PostgreSQL; see :mod:`a3mail.store.locks`.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import time
from collections.abc import Callable
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import INegotiated, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.mail import pop3
from twisted.python.failure import Failure

from a3mail.logs import get_logger
from a3mail.pop3 import replies, sasl
from a3mail.pop3.commands import LINE_TOO_LONG, CommandQueue, message_number, split_command
from a3mail.pop3.framing import TopFilter
from a3mail.pop3.mailbox import Entry, Maildrop, NoSuchMessage
from a3mail.pop3.sender import MessageSender, SendAborted
from a3mail.store import StoreError
from a3mail.store.locks import SessionLock

log = get_logger(__name__)

LOCK_SCOPE = "pop3"
PROTOCOL_NAME = "pop3"

# How many complete command lines may wait before the server stops reading the socket.
MAX_QUEUED_LINES = 64


class State(enum.Enum):
    """RFC 1939 session states (CLOSED: the session is ending, nothing more is done)."""

    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"
    CLOSED = "closed"


Handler = Callable[["POP3Server", bytes], "Deferred[Any] | None"]


class POP3Server(pop3.POP3):
    """One POP3 session.  Its factory is a :class:`a3mail.pop3.factory.POP3Factory`."""

    factory: Any
    transport: Any

    def __init__(self) -> None:
        self.phase = State.AUTHORIZATION  # the RFC 1939 session state
        self.secure = False
        self.errors = 0
        self.maildrop: Maildrop | None = None
        self.lock: SessionLock | None = None
        self.pending_user: bytes | None = None
        self.sender: MessageSender | None = None
        self._sasl: sasl.Plain | sasl.Login | None = None
        self._queue: CommandQueue | None = None
        self._busy = False
        self._pumping = False
        self._reading_paused = False
        self._disconnected = False
        self._idle_waiters: list[Deferred[None]] = []

    # -- connection ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet (without an APOP timestamp) and start the idle timer."""
        settings = self.factory.settings
        self._queue = CommandQueue(settings.max_line_length)
        self.callLater = self.factory.clock.callLater  # type: ignore[method-assign]
        self.secure = INegotiated.providedBy(self.transport) or ISSLTransport.providedBy(
            self.transport
        )
        self.factory.metrics.connection_opened("pop3")
        self._reply(b"+OK %s POP3 server ready." % settings.hostname.encode("ascii", "replace"))
        self.setTimeout(settings.idle_timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Drop the session: nothing is committed unless QUIT was under way."""
        self._disconnected = True
        self.factory.metrics.connection_closed("pop3")
        self.setTimeout(None)
        if self.sender is not None:
            self.sender.stopProducing()
        if self._queue is not None:
            self._queue.discard()
        if self.phase is not State.UPDATE:
            self.phase = State.CLOSED
            self._release_lock()
        self._wake_idle_waiters()

    def timeoutConnection(self) -> None:
        """The client stayed idle too long (TimeoutMixin)."""
        log.info("pop3 session from {peer} timed out", peer=self._peer_ip())
        self._end(replies.ERR_IDLE)

    def _end(self, last_line: bytes | None) -> None:
        """Stop everything and close; *last_line* is sent unless a message is streaming."""
        if self.phase is not State.UPDATE:
            self.phase = State.CLOSED
        if self._queue is not None:
            self._queue.discard()
        self._resume_reading()
        if self.sender is not None:
            self.sender.stopProducing()
            self.transport.abortConnection()
            return
        if last_line is not None:
            self._reply(last_line)
        self.transport.loseConnection()

    # -- reading and running commands -----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Queue complete lines and run them one after another."""
        if self.phase is State.CLOSED or self._queue is None:
            return
        self.resetTimeout()
        self._queue.feed(data)
        if len(self._queue) >= MAX_QUEUED_LINES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pauseProducing()
        self._pump()

    def _pump(self) -> None:
        if self._pumping or self._queue is None:
            return
        self._pumping = True
        try:
            while not self._busy and self.phase is not State.CLOSED:
                line = self._queue.pop()
                if line is None:
                    break
                self._busy = True
                try:
                    result = self._handle(line)
                except Exception:
                    log.failure("pop3 command failed")
                    self._reply(replies.ERR_TEMPORARY)
                    result = None
                if isinstance(result, Deferred):
                    result.addErrback(self._unexpected)
                    result.addBoth(self._command_done)
                else:
                    self._busy = False
        finally:
            self._pumping = False
        if not self._busy:
            self._resume_reading()
            self._wake_idle_waiters()

    def _resume_reading(self) -> None:
        # Also when the session is ending: a TLS connection cannot close while not reading.
        if self._reading_paused and not self._disconnected:
            self._reading_paused = False
            self.transport.resumeProducing()

    def _command_done(self, _: object) -> None:
        self._busy = False
        self._pump()

    def _unexpected(self, failure: Failure) -> None:
        log.failure("pop3 command failed", failure)
        if self.phase is not State.CLOSED and not self._disconnected:
            self._reply(replies.ERR_TEMPORARY)

    def when_idle(self) -> Deferred[None]:
        """Fires once every received command has been answered (for tests and tools)."""
        queued = self._queue is not None and len(self._queue) > 0
        if self._disconnected or not (self._busy or queued):
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _handle(self, line: object) -> Deferred[Any] | None:
        if line is LINE_TOO_LONG:
            self._sasl = None
            self._client_error(replies.ERR_LINE_TOO_LONG)
            return None
        assert isinstance(line, bytes)
        if self._sasl is not None:
            return self._sasl_step(line)
        keyword, rest = split_command(line)
        command = COMMANDS.get(keyword)
        if command is None:
            self._client_error(replies.ERR_UNKNOWN)
            return None
        handler, states = command
        if self.phase not in states:
            self._client_error(replies.ERR_STATE)
            return None
        return self._timed(keyword, handler(self, rest), time.perf_counter())

    def _timed(self, keyword: bytes, result: Any, started: float) -> Any:
        """Count the command in the metrics when it is answered."""
        name = keyword.decode("ascii", "replace")

        def done(outcome: object) -> object:
            self.factory.metrics.command("pop3", name, time.perf_counter() - started)
            return outcome

        if isinstance(result, Deferred):
            return result.addBoth(done)
        return done(result)

    # -- replies --------------------------------------------------------------------------

    def _reply(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")

    def _client_error(self, line: bytes) -> None:
        """Answer a client mistake; too many of them end the session."""
        self.errors += 1
        if self.errors > self.factory.settings.max_errors:
            log.info("pop3 session from {peer}: too many errors", peer=self._peer_ip())
            self._end(replies.ERR_TOO_MANY_ERRORS)
        else:
            self._reply(line)

    def _no_arguments(self, rest: bytes) -> bool:
        if rest.strip():
            self._client_error(replies.ERR_ARGUMENTS)
            return False
        return True

    # -- AUTHORIZATION state --------------------------------------------------------------

    def capabilities(self) -> list[bytes]:
        """CAPA lines: exactly what this session can do (the same in both states)."""
        caps = [b"TOP", b"UIDL"]
        if self.passwords_allowed():
            caps += [b"USER", b"SASL " + b" ".join(sasl.MECHANISMS)]
        if not self.secure and self.factory.tls is not None:
            caps.append(b"STLS")
        caps += [b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING", b"IMPLEMENTATION a3mail"]
        return caps

    def passwords_allowed(self) -> bool:
        """Over TLS always; in plaintext only from loopback, and only if configured."""
        if self.secure:
            return True
        return bool(self.factory.settings.allow_plaintext_loopback) and is_loopback(self._peer_ip())

    def do_capa(self, rest: bytes) -> None:
        """CAPA (RFC 2449)."""
        if self._no_arguments(rest):
            lines = [b"+OK Capability list follows.", *self.capabilities(), b"."]
            self.transport.write(b"".join(line + b"\r\n" for line in lines))

    def do_stls(self, rest: bytes) -> None:
        """STLS (RFC 2595): switch to TLS; whatever the client sent after it is dropped."""
        if not self._no_arguments(rest):
            return
        if self.secure:
            self._client_error(b"-ERR Already using TLS.")
            return
        if self.factory.tls is None:
            self._client_error(b"-ERR STLS is not available.")
            return
        self._reply(b"+OK Begin TLS negotiation now.")
        assert self._queue is not None
        self._queue.discard()  # command injection: plaintext pipelined after STLS
        self.transport.startTLS(self.factory.tls)
        self.secure = True
        self.pending_user = None

    def do_user(self, rest: bytes) -> None:
        """USER name."""
        if not self.passwords_allowed():
            self._client_error(replies.ERR_PLAINTEXT)
        elif not rest or rest.strip() != rest:
            self._client_error(replies.ERR_ARGUMENTS)
        else:
            self.pending_user = rest
            self._reply(b"+OK Send the password.")

    def do_pass(self, rest: bytes) -> Deferred[None] | None:
        """PASS password (the rest of the line, spaces included)."""
        user, self.pending_user = self.pending_user, None
        if not self.passwords_allowed():
            self._client_error(replies.ERR_PLAINTEXT)
            return None
        if user is None:
            self._client_error(b"-ERR Send USER first.")
            return None
        return Deferred.fromCoroutine(self._login(user, rest))

    def do_auth(self, rest: bytes) -> Deferred[None] | None:
        """AUTH mechanism [initial-response] (RFC 5034); bare AUTH lists the mechanisms."""
        args = rest.split()
        if not self.passwords_allowed():
            self._client_error(replies.ERR_PLAINTEXT)
            return None
        if not args:
            lines = [b"+OK Mechanisms follow.", *sasl.MECHANISMS, b"."]
            self.transport.write(b"".join(line + b"\r\n" for line in lines))
            return None
        if len(args) > 2:
            self._client_error(replies.ERR_ARGUMENTS)
            return None
        mechanism = sasl.mechanism(args[0])
        if mechanism is None:
            self._client_error(b"-ERR Unsupported authentication mechanism.")
            return None
        self._sasl = mechanism
        if len(args) == 2:
            return self._sasl_step(args[1])
        self._reply(b"+ " + base64.b64encode(mechanism.first_challenge))
        return None

    def _sasl_step(self, line: bytes) -> Deferred[None] | None:
        mechanism = self._sasl
        assert mechanism is not None
        if line.strip() == sasl.CANCEL:
            self._sasl = None
            self._client_error(b"-ERR Authentication cancelled.")
            return None
        try:
            result = mechanism.step(sasl.decode_response(line.strip()))
        except sasl.SaslError as e:
            self._sasl = None
            self._client_error(b"-ERR " + str(e).encode("ascii") + b".")
            return None
        if isinstance(result, bytes):
            self._reply(b"+ " + base64.b64encode(result))
            return None
        self._sasl = None
        return Deferred.fromCoroutine(self._login(result.username, result.password))

    async def _login(self, username: bytes, password: bytes) -> None:
        """Check the password, lock the maildrop, take its snapshot."""
        name = username.decode("utf-8", "replace")
        ip = self._peer_ip()
        factory = self.factory
        try:
            avatar = await factory.checker.requestAvatarId(UsernamePassword(username, password))
        except UnauthorizedLogin:
            await factory.guard.failed(PROTOCOL_NAME, name, ip, "bad credentials")
            self._client_error(replies.ERR_AUTH_FAILED)
            return
        except Exception:
            log.failure("pop3 password check failed")
            self._reply(replies.ERR_TEMPORARY)
            return
        address = avatar.decode("utf-8")
        await factory.guard.succeeded(PROTOCOL_NAME, address, ip)
        try:
            account = await factory.store.accounts.get(address)
            lock = await factory.store.locks.acquire(LOCK_SCOPE, account.id, self._lock_lost)
        except Exception as e:
            self._temporary_failure(e, "locking the maildrop")
            return
        if lock is None:
            self._reply(replies.ERR_IN_USE)
            return
        if self.phase is not State.AUTHORIZATION:  # the connection went away meanwhile
            await lock.release()
            return
        self.lock = lock
        try:
            maildrop = await Maildrop.load(factory.store, account.id)
        except Exception as e:
            self._release_lock()
            self._temporary_failure(e, "loading the maildrop")
            return
        if self.phase is not State.AUTHORIZATION:
            return  # connectionLost released the lock
        self.maildrop = maildrop
        self.phase = State.TRANSACTION
        count, octets = maildrop.stat()
        log.info("pop3 login {address} from {ip}", address=address, ip=ip)
        self._reply(b"+OK Logged in, %d messages (%d octets)." % (count, octets))

    def _temporary_failure(self, error: Exception, doing: str) -> None:
        """Answer [SYS/TEMP]; a store outage is expected, anything else is logged in full."""
        if isinstance(error, StoreError):
            log.warn("pop3 login failed {doing}: {error}", doing=doing, error=str(error))
        else:
            log.failure("pop3 login failed {doing}", doing=doing)
        self._reply(replies.ERR_TEMPORARY)

    def _lock_lost(self) -> None:
        """The store lost our maildrop lock: end the session rather than go on unlocked."""
        self.lock = None
        if self.phase in (State.TRANSACTION, State.AUTHORIZATION) and not self._disconnected:
            log.warn("pop3 session from {peer}: maildrop lock lost", peer=self._peer_ip())
            self._end(replies.ERR_LOCK_LOST)

    def _release_lock(self) -> None:
        lock, self.lock = self.lock, None
        if lock is not None:
            lock.release().addErrback(lambda f: log.failure("releasing a pop3 lock", f))

    def do_quit(self, rest: bytes) -> Deferred[None] | None:
        """QUIT: in TRANSACTION, commit the deletions first (RFC 1939 UPDATE state)."""
        if self.phase is State.TRANSACTION:
            self.phase = State.UPDATE
            return Deferred.fromCoroutine(self._update())
        self._reply(b"+OK Bye.")
        self._end(None)
        return None

    async def _update(self) -> None:
        maildrop, lock = self.maildrop, self.lock
        assert maildrop is not None
        uids = maildrop.deleted_uids()
        try:
            if not uids:
                self._reply(b"+OK Bye.")
            elif lock is None or not await lock.confirm():
                self._reply(replies.ERR_LOCK_LOST)
            else:
                await maildrop.commit()
                self._reply(b"+OK Bye, %d messages deleted." % len(uids))
        except Exception:
            log.failure("pop3 QUIT could not commit the deletions")
            self._reply(replies.ERR_NOT_COMMITTED)
        finally:
            self.phase = State.CLOSED
            self._release_lock()
            self._resume_reading()
            self.transport.loseConnection()

    # -- TRANSACTION state ----------------------------------------------------------------

    def _entry(self, arg: bytes) -> Entry | None:
        """The live message *arg* names, or None after answering the error."""
        number = message_number(arg)
        assert self.maildrop is not None
        if number is None:
            self._client_error(replies.ERR_ARGUMENTS)
            return None
        try:
            return self.maildrop.get(number)
        except NoSuchMessage as e:
            self._client_error(replies.ERR_DELETED if e.deleted else replies.ERR_NO_MESSAGE)
            return None

    def do_stat(self, rest: bytes) -> None:
        """STAT: count and octets of the messages not marked deleted."""
        assert self.maildrop is not None
        if self._no_arguments(rest):
            self._reply(b"+OK %d %d" % self.maildrop.stat())

    def do_list(self, rest: bytes) -> None:
        """LIST [n]: exact stored sizes."""
        self._listing(rest, lambda e: b"%d %d" % (e.number, e.size))

    def do_uidl(self, rest: bytes) -> None:
        """UIDL [n]: ``<uidvalidity>.<uid>``."""
        self._listing(rest, lambda e: b"%d %s" % (e.number, e.unique_id.encode("ascii")))

    def _listing(self, rest: bytes, line: Callable[[Entry], bytes]) -> None:
        assert self.maildrop is not None
        args = rest.split()
        if len(args) > 1:
            self._client_error(replies.ERR_ARGUMENTS)
        elif args:
            entry = self._entry(args[0])
            if entry is not None:
                self._reply(b"+OK " + line(entry))
        else:
            count, octets = self.maildrop.stat()
            lines = [b"+OK %d messages (%d octets)" % (count, octets)]
            lines += [line(e) for e in self.maildrop.live()]
            self.transport.write(b"".join(item + b"\r\n" for item in [*lines, b"."]))

    def do_retr(self, rest: bytes) -> Deferred[None] | None:
        """RETR n: the message, byte-exact, dot-stuffed, streamed."""
        args = rest.split()
        if len(args) != 1:
            self._client_error(replies.ERR_ARGUMENTS)
            return None
        entry = self._entry(args[0])
        if entry is None:
            return None
        return self._send(entry, b"+OK %d octets" % entry.size, None)

    def do_top(self, rest: bytes) -> Deferred[None] | None:
        """TOP n lines: the header, the blank line and the first *lines* body lines."""
        args = rest.split()
        if len(args) != 2 or message_number(args[1]) is None:
            self._client_error(replies.ERR_ARGUMENTS)
            return None
        entry = self._entry(args[0])
        if entry is None:
            return None
        return self._send(entry, b"+OK Top of message follows.", TopFilter(int(args[1])))

    def _send(self, entry: Entry, status: bytes, top: TopFilter | None) -> Deferred[None] | None:
        assert self.maildrop is not None
        try:
            file = self.maildrop.open(entry)
        except FileNotFoundError:
            self._reply(replies.ERR_GONE)
            return None
        except OSError:
            log.failure("pop3 cannot open a message file")
            self._reply(replies.ERR_TEMPORARY)
            return None
        self._reply(status)
        self.sender = MessageSender(file, self.transport, top=top, on_progress=self.resetTimeout)
        done: Deferred[Any] = self.sender.start()
        return done.addBoth(self._sent)

    def _sent(self, result: object) -> None:
        self.sender = None
        if isinstance(result, Failure) and not result.check(SendAborted):
            log.failure("pop3 message transfer failed", result)
            self.transport.abortConnection()  # the client cannot tell a cut message apart

    def do_dele(self, rest: bytes) -> None:
        """DELE n: mark only; QUIT commits."""
        args = rest.split()
        if len(args) != 1:
            self._client_error(replies.ERR_ARGUMENTS)
            return
        entry = self._entry(args[0])
        if entry is not None:
            assert self.maildrop is not None
            self.maildrop.delete(entry.number)
            self._reply(b"+OK Message %d deleted." % entry.number)

    def do_rset(self, rest: bytes) -> None:
        """RSET: unmark every message marked deleted."""
        assert self.maildrop is not None
        if self._no_arguments(rest):
            self.maildrop.reset()
            self._reply(b"+OK %d messages (%d octets)." % self.maildrop.stat())

    def do_noop(self, rest: bytes) -> None:
        """NOOP."""
        if self._no_arguments(rest):
            self._reply(b"+OK")

    # -- helpers -------------------------------------------------------------------------

    def _peer_ip(self) -> str | None:
        peer = self.transport.getPeer() if self.transport is not None else None
        host = getattr(peer, "host", None)
        return host if isinstance(host, str) else None


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses."""
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_ANY = frozenset({State.AUTHORIZATION, State.TRANSACTION})
_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})

# The command table: keyword -> (handler, states it is valid in).  No APOP, no RPOP.
COMMANDS: dict[bytes, tuple[Handler, frozenset[State]]] = {
    b"CAPA": (POP3Server.do_capa, _ANY),
    b"QUIT": (POP3Server.do_quit, _ANY),
    b"STLS": (POP3Server.do_stls, _AUTHORIZATION),
    b"USER": (POP3Server.do_user, _AUTHORIZATION),
    b"PASS": (POP3Server.do_pass, _AUTHORIZATION),
    b"AUTH": (POP3Server.do_auth, _AUTHORIZATION),
    b"STAT": (POP3Server.do_stat, _TRANSACTION),
    b"LIST": (POP3Server.do_list, _TRANSACTION),
    b"UIDL": (POP3Server.do_uidl, _TRANSACTION),
    b"RETR": (POP3Server.do_retr, _TRANSACTION),
    b"TOP": (POP3Server.do_top, _TRANSACTION),
    b"DELE": (POP3Server.do_dele, _TRANSACTION),
    b"RSET": (POP3Server.do_rset, _TRANSACTION),
    b"NOOP": (POP3Server.do_noop, _TRANSACTION),
}
