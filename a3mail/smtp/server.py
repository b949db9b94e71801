"""The SMTP server protocol: twisted.mail's ESMTP, subclassed and fixed.

We keep ESMTP's skeleton (line sending, the TimeoutMixin, STARTTLS bookkeeping) and
replace what is wrong with it (see ``docs/smtp.md`` and TWISTED-MAIL-NOTES):

- input is framed by our own buffer, and a command whose check is asynchronous holds the
  rest of the pipeline until it completes, so pipelined ``MAIL/RCPT/RCPT/DATA``+body works
  and no body line is ever run as a command;
- DATA streams to a file through :class:`~a3mail.smtp.data.DataReceiver`; only
  ``CRLF.CRLF`` ends it, and an overlong line never leaves DATA mode;
- STARTTLS discards everything the client sent after the command in plaintext;
- AUTH is refused before TLS, and authentication goes through twisted.cred;
- commands are dispatched from a fixed table (never by gluing client input into method
  names), bad bytes get ``500 5.5.2``, and no exception text reaches the client;
- every reply carries an enhanced status code; trace headers use CRLF.
"""

from __future__ import annotations

import base64
import inspect
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.mail.smtp import ESMTP
from twisted.python.failure import Failure

from a3mail.logs import get_logger
from a3mail.smtp import headers, replies
from a3mail.smtp.addresses import AddressError, MailPath, PathArgument, parse_argument
from a3mail.smtp.auth import MECHANISMS, Credentials, SaslError, SaslExchange
from a3mail.smtp.chunking import ChunkedMessage, parse_bdat
from a3mail.smtp.data import DataReceiver, DataResult
from a3mail.smtp.delivery import ReceivedMessage, parse_json
from a3mail.smtp.pipelining import ReplyBuffer
from a3mail.smtp.policy import AuthUser
from a3mail.smtp.replies import Reply
from a3mail.smtp.session import SUBMISSION, ListenerContext, Transaction
from a3mail.smtp.spill import SpillingSink
from a3mail.store.db import StoreUnavailable

log = get_logger(__name__)

COMMAND, DATA, AUTH, DISCARD, CHUNK = "COMMAND", "DATA", "AUTH", "DISCARD", "CHUNK"
_CRLF = b"\r\n"
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_VERB = re.compile(rb"[A-Za-z]{1,16}")
_UTF8_ARGUMENTS = (b"MAIL", b"RCPT", b"EHLO", b"HELO")


class _NullSink:
    def write(self, data: bytes) -> None:
        """Drop the bytes."""


class SMTPServer(ReplyBuffer, ESMTP):  # type: ignore[misc]
    """One SMTP connection (MX or submission, see :class:`ListenerContext`)."""

    def __init__(self, context: ListenerContext) -> None:
        super().__init__(chal={}, contextFactory=context.tls)
        self.context = context
        self.limits = context.limits
        self.host = context.hostname.encode("ascii")
        self.client_ip = "unknown"
        self.helo: str | None = None
        self.esmtp = False
        self.user: AuthUser | None = None
        self.tx: Transaction | None = None
        self.errors = 0
        self.on_close: Callable[[], None] | None = None
        self._input = bytearray()
        self._hold_replies()  # replies held until the pipeline is drained (RFC 2920)
        self._busy = False
        self._processing = False
        self._paused = False
        self._skipping_line = False
        self._receiver: DataReceiver | None = None
        self._chunked: ChunkedMessage | None = None
        self._chunk_left = 0
        self._chunk_last = False
        self._chunk_refusal: Reply | None = None
        self._writer: Any = None
        self._trace = (b"", b"")
        self._sasl: SaslExchange | None = None
        self._commands: dict[bytes, Callable[[bytes], Any]] = {
            b"HELO": self.do_HELO,
            b"EHLO": self.do_EHLO,
            b"MAIL": self.do_MAIL,
            b"RCPT": self.do_RCPT,
            b"DATA": self.do_DATA,
            b"BDAT": self.do_BDAT,
            b"RSET": self.do_RSET,
            b"NOOP": self.do_NOOP,
            b"QUIT": self.do_QUIT,
            b"VRFY": self.do_VRFY,
            b"EXPN": self.do_EXPN,
            b"HELP": self.do_HELP,
            b"STARTTLS": self.ext_STARTTLS,
            b"AUTH": self.ext_AUTH,
        }

    def callLater(self, period: float, func: Callable[[], Any]) -> Any:
        """The TimeoutMixin's timer, on the listener's clock (a Clock in tests)."""
        return self.context.clock.callLater(period, func)

    @property
    def _transport(self) -> Any:
        """The transport (TCP, TLS, or a test's), untyped: each offers what we call."""
        return self.transport

    # -- connection --------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet; note whether TLS is on (implicit-TLS listener) or can be started."""
        peer = self._transport.getPeer()
        self.client_ip = str(getattr(peer, "host", "unknown"))
        self.startedTLS = ISSLTransport.providedBy(self.transport)
        self.canStartTLS = ITLSTransport.providedBy(self.transport) and self.ctx is not None
        self.context.stats.connection_opened()
        self.context.metrics.connection_opened("smtp")
        self.reply(Reply(220, "", f"{self.context.hostname} ESMTP a3mail"))
        self.setTimeout(self.limits.command_timeout)

    def connectionLost(self, reason: Failure | None = None) -> None:
        """Drop any partial message; release the connection slot."""
        self.setTimeout(None)
        self._abort_data()
        self.context.stats.connection_closed()
        self.context.metrics.connection_closed("smtp")
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    def timeoutConnection(self) -> None:
        """Idle too long (between commands or inside DATA): 421 and close.  While the
        server itself is working (a store call in progress) the client is not idle."""
        if self._busy:
            self.resetTimeout()
            return
        self._abort_data()
        self.reply(replies.TIMEOUT)
        self._close()

    def reply(self, reply: Reply) -> None:
        """Send *reply*; past ``max_errors`` error replies, say 421 and close.

        Replies to pipelined commands are sent together (RFC 2920): they are held while
        the input is being processed, or while a command waits for the store with more
        commands behind it, and written in one piece once the server would wait for the
        client (see :mod:`a3mail.smtp.pipelining`).
        """
        if self._transport.disconnecting:
            return
        self._replies += [line + _CRLF for line in reply.lines()]
        if reply.code >= 500:
            self.errors += 1
            if self.errors >= self.limits.max_errors:
                self._replies.append(b"".join(replies.TOO_MANY_ERRORS.lines()) + _CRLF)
                self._close()
                return
        if not self._processing:
            self._flush_replies()

    # -- input framing -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Buffer input and process what can be processed now (in order)."""
        if self._transport.disconnecting:
            return
        self._input += data
        self.resetTimeout()
        self._drain()
        if len(self._input) > self.limits.max_buffered and not self._paused:
            self._paused = True
            self._transport.pauseProducing()

    def _drain(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while self._input and not self._busy and not self._transport.disconnecting:
                if self.mode == CHUNK:
                    if not self._take_chunk():
                        break
                    self._run(self._end_of_chunk)
                    continue
                if self.mode in (DATA, DISCARD):
                    assert self._receiver is not None
                    if not self._receiver.feed(self._input):
                        break
                    self._run(self._end_of_data if self.mode == DATA else self._end_of_discard)
                    continue
                line = self._next_line()
                if line is None:
                    break
                self._run(self._command if self.mode == COMMAND else self._auth_response, line)
        finally:
            self._processing = False
        self._flush_replies()
        if self._paused and len(self._input) <= self.limits.max_buffered // 2:
            self._paused = False
            self._transport.resumeProducing()

    def _next_line(self) -> bytes | None:
        """The next complete command line, or None until more input arrives.  An overlong
        line is answered once with 500 5.5.2 and dropped up to its CRLF."""
        limit = self.limits.max_line_length
        while True:
            if self._skipping_line:
                idx = self._input.find(_CRLF)
                if idx < 0:  # keep a trailing CR: it may start the CRLF
                    keep = 1 if self._input.endswith(b"\r") else 0
                    del self._input[: len(self._input) - keep]
                    return None
                del self._input[: idx + 2]
                self._skipping_line = False
                continue
            idx = self._input.find(_CRLF, 0, limit + 2)
            if idx >= 0:
                line = bytes(self._input[:idx])
                del self._input[: idx + 2]
                return line
            if len(self._input) <= limit + 1:
                return None
            self._skipping_line = True
            self.reply(replies.LINE_TOO_LONG)

    def _run(self, handler: Callable[..., Any], *args: Any) -> None:
        """Run a handler; an asynchronous one holds the pipeline until it is done."""
        try:
            result = handler(*args)
        except Exception:
            self._internal_error(Failure())
            return
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            self._busy = True
            result.addErrback(self._internal_error)
            result.addBoth(self._resume)

    def _resume(self, _: Any) -> None:
        self._busy = False
        if not self._transport.disconnecting:
            self.setTimeout(
                self.limits.data_timeout if self.mode == DATA else self.limits.command_timeout
            )
        self._drain()

    def _internal_error(self, failure: Failure) -> None:
        if failure.check(StoreUnavailable):
            log.warn("SMTP: store unavailable: {reason}", reason=str(failure.value))
            self.reply(replies.UNAVAILABLE)
            return
        log.failure("SMTP: unexpected error", failure)
        self.reply(replies.LOCAL_ERROR)

    # -- command dispatch --------------------------------------------------------------

    def _command(self, line: bytes) -> Any:
        verb, _, rest = line.strip(b" ").partition(b" ")
        verb = verb.upper()
        if not _VERB.fullmatch(verb):
            return self.reply(replies.BAD_CHARACTERS if verb else replies.UNRECOGNIZED)
        rest = rest.strip(b" ")
        if _CONTROL.search(rest) or (not rest.isascii() and verb not in _UTF8_ARGUMENTS):
            return self.reply(replies.BAD_CHARACTERS)
        handler = self._commands.get(verb)
        if handler is None:
            return self.reply(replies.UNRECOGNIZED)
        return handler(rest)

    def _reset_transaction(self) -> None:
        self.tx = None
        if self._chunked is not None:  # RSET or EHLO between BDAT chunks
            self._abort_data()

    # -- HELO / EHLO -------------------------------------------------------------------

    def do_HELO(self, rest: bytes) -> None:
        """HELO: plain SMTP, no extensions."""
        if not rest:
            return self.reply(replies.SYNTAX)
        self._greeted(rest, esmtp=False)
        self.reply(Reply(250, "", f"{self.context.hostname}"))

    def do_EHLO(self, rest: bytes) -> None:
        """EHLO: list the extensions available now."""
        if not rest:
            return self.reply(replies.SYNTAX)
        self._greeted(rest, esmtp=True)
        lines = [
            f"{self.context.hostname} Hello {headers.clean(self.helo or '')} [{self.client_ip}]",
            "PIPELINING",
            f"SIZE {self.limits.max_message_size}",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "CHUNKING",
        ]
        if self.canStartTLS and not self.startedTLS:
            lines.append("STARTTLS")
        if self._auth_allowed():
            lines.append("AUTH " + " ".join(m.decode() for m in MECHANISMS))
        self.reply(Reply(250, "", "\n".join(lines)))

    def _greeted(self, rest: bytes, *, esmtp: bool) -> None:
        self.helo = rest.split(b" ", 1)[0].decode("utf-8", "replace")[:255]
        self.esmtp = esmtp
        self._reset_transaction()

    # -- MAIL FROM ---------------------------------------------------------------------

    async def do_MAIL(self, rest: bytes) -> None:
        """MAIL FROM:<path> [SIZE= BODY= SMTPUTF8 AUTH=]."""
        if self.helo is None:
            return self.reply(replies.HELO_FIRST)
        if self.tx is not None:
            return self.reply(replies.NESTED_MAIL)
        if self.context.mode == SUBMISSION and self.user is None:
            return self.reply(replies.AUTH_REQUIRED)
        try:
            argument = parse_argument(rest, b"FROM", allow_null=True)
            tx = self._transaction(argument)
        except AddressError as e:
            return self.reply(e.reply)
        refusal = await self.context.policy.check_sender(self.user, tx.sender)
        if refusal is not None:
            return self.reply(refusal)
        self.tx = tx
        self.reply(replies.SENDER_OK)

    def _transaction(self, argument: PathArgument) -> Transaction:
        """The MAIL FROM parameters checked: a new transaction, or AddressError."""
        if argument.params and not self.esmtp:
            raise AddressError(replies.UNKNOWN_PARAMETER)
        tx = Transaction(argument.path)
        for name, value in argument.params.items():
            if name == "SIZE":
                if value is None or not value.isdigit() or len(value) > 20:
                    raise AddressError(replies.SYNTAX.with_text("Bad SIZE value"))
                tx.size = int(value)
                if tx.size > self.limits.max_message_size:
                    raise AddressError(replies.MESSAGE_TOO_BIG)
            elif name == "BODY":
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    raise AddressError(replies.UNKNOWN_PARAMETER.with_text("Unsupported BODY"))
                tx.body = value.upper()
            elif name == "SMTPUTF8" and value is None:
                tx.smtputf8 = True
            elif name != "AUTH":  # RFC 4954 AUTH=<mailbox>: accepted and ignored
                raise AddressError(replies.UNKNOWN_PARAMETER)
        if not tx.sender.is_ascii and not tx.smtputf8:
            raise AddressError(replies.NEEDS_SMTPUTF8)
        return tx

    # -- RCPT TO -----------------------------------------------------------------------

    async def do_RCPT(self, rest: bytes) -> None:
        """RCPT TO:<path>; the recipient is checked now (per-recipient outcome)."""
        tx = self.tx
        if tx is None:
            return self.reply(replies.NEED_MAIL)
        if len(tx.recipients) >= self.limits.max_recipients:
            return self.reply(replies.TOO_MANY_RECIPIENTS)
        try:
            path = self._recipient_path(rest, tx)
        except AddressError as e:
            self.context.stats.recipients_rejected["syntax"] += 1
            return self.reply(e.reply)
        reply, recipient = await self.context.policy.check_recipient(self.user, path, tx.size)
        if recipient is not None:
            tx.add(recipient)
            self.context.stats.recipients_accepted += 1
        else:
            self.context.stats.recipients_rejected[reply.status] += 1
        self.reply(reply)

    def _recipient_path(self, rest: bytes, tx: Transaction) -> MailPath:
        if rest[3:].strip(b" ").lower() == b"<postmaster>" and rest[:3].upper() == b"TO:":
            return MailPath("postmaster", self.context.hostname)  # RFC 5321 4.5.1
        argument = parse_argument(rest, b"TO", allow_null=False)
        if argument.params:  # no DSN: RCPT takes no parameters
            raise AddressError(replies.UNKNOWN_PARAMETER)
        if not argument.path.is_ascii and not tx.smtputf8:
            raise AddressError(replies.NEEDS_SMTPUTF8)
        return argument.path

    # -- DATA ----------------------------------------------------------------------------

    def do_DATA(self, rest: bytes) -> Any:
        """DATA: start streaming the message to a file."""
        tx = self.tx
        refusal = None
        if rest:
            refusal = replies.SYNTAX
        elif self._chunked is not None:
            refusal = replies.BDAT_IN_PROGRESS
        elif tx is None:
            refusal = replies.NEED_MAIL
        elif not tx.recipients:
            refusal = replies.NO_VALID_RECIPIENTS
        if refusal is not None or tx is None:
            self.reply(refusal or replies.NEED_MAIL)
            if self._input:  # a body sent before our 354: swallow it, never run it
                self._start_discard()
            return
        prefix, scratch = self._trace_headers(tx)
        self._start_data(prefix, scratch)
        self.mode = DATA
        self.setTimeout(self.limits.data_timeout)
        self.reply(replies.START_DATA)

    def _trace_headers(self, tx: Transaction) -> tuple[bytes, bool]:
        """Return-Path and Received for *tx* (kept for the delivery); returns what goes
        before the message in the file (nothing when it is a scratch file for
        verification, which gets them at delivery) and whether it is a scratch file."""
        scratch = self.user is None and self.context.verify_inbound
        return_path = headers.return_path(tx.sender.address)
        received = headers.received(
            helo=self.helo or "unknown",
            client_ip=self.client_ip,
            hostname=self.context.hostname,
            protocol=headers.protocol_name(
                esmtp=self.esmtp,
                tls=bool(self.startedTLS),
                authenticated=self.user is not None,
                utf8=tx.smtputf8,
            ),
            queue_id=tx.queue_id,
            recipient=tx.recipients[0].address if len(tx.recipients) == 1 else None,
            when=self.context.clock.seconds(),
        )
        self._trace = (return_path, received)
        return (b"" if scratch else return_path + received), scratch

    def _start_data(self, prefix: bytes, scratch: bool) -> None:
        """A receiver for the message (DATA or BDAT): the data goes to memory, or a spool
        file once it is large (see :mod:`a3mail.smtp.spill`); a file that cannot be
        written is refused at the end of the data."""
        writer = SpillingSink(self.context.store, prefix, scratch=scratch)
        self._writer = writer
        self._receiver = DataReceiver(
            writer,
            max_size=self.limits.max_message_size,
            max_line=self.limits.max_data_line_length,
            authserv_id=self.context.hostname,
            drop_forged=not scratch,
            offset=len(prefix),
        )

    def _start_discard(self) -> None:
        self._receiver = DataReceiver(
            _NullSink(), max_size=0, max_line=1 << 30, authserv_id="", drop_forged=True
        )
        self.mode = DISCARD

    def _end_of_discard(self) -> None:
        self._receiver = None
        self.mode = COMMAND
        self.reply(replies.DISCARDED)

    def _refused(self, result: DataResult, tx: Transaction) -> Reply | None:
        """The reply refusing a message whose data came in as *result* (reported), or
        None if nothing is wrong with it."""
        if result.too_big:
            refusal, reason = replies.MESSAGE_TOO_BIG, "size"
        elif result.line_too_long:
            refusal, reason = replies.DATA_LINE_TOO_LONG, "line_length"
        elif result.write_failed:
            refusal, reason = replies.LOCAL_ERROR, "write_failed"
        elif result.hops > self.limits.max_hops:
            refusal, reason = replies.TOO_MANY_HOPS, "hops"
        else:
            return None
        self.context.reporter.rejected(
            reason, queue_id=tx.queue_id, size=result.size, recipients=len(tx.recipients)
        )
        return refusal

    async def _end_of_data(self) -> None:
        receiver, writer, tx = self._receiver, self._writer, self.tx
        self._receiver = self._writer = self.tx = None
        self._chunked = None
        self.mode = COMMAND
        assert receiver is not None and tx is not None
        result = receiver.result()
        refusal = self._refused(result, tx)
        if refusal is not None:
            writer.abort()
            return self.reply(refusal)
        assert writer is not None
        scratch = writer.scratch  # decided with the trace headers, at the start of the data
        # write + fsync (not for a scratch file: an input for verification only) + MIME
        # parse, in one worker-thread hand-off
        try:
            blob, parsed = await writer.finish(None if scratch else parse_json)
        except OSError:
            log.failure("SMTP: cannot write a message file")
            writer.abort()
            return self.reply(replies.LOCAL_ERROR)
        message = ReceivedMessage(
            blob=blob,
            parsed=parsed,
            scratch=scratch,
            return_path=self._trace[0],
            received=self._trace[1],
            data=result,
            sender=tx.sender.address,
            recipients=tuple(tx.recipients),
            client_ip=self.client_ip,
            helo=self.helo or "",
            user=self.user,
            queue_id=tx.queue_id,
        )
        self.reply(await self.context.delivery.deliver(message))

    def _abort_data(self) -> None:
        writer, self._writer = self._writer, None
        self._receiver = None
        self._chunked = None
        if writer is not None:
            writer.abort()
        if self.mode in (DATA, DISCARD, CHUNK):
            self.mode = COMMAND

    # -- BDAT (RFC 3030) -----------------------------------------------------------------

    def do_BDAT(self, rest: bytes) -> Any:
        """BDAT size [LAST]: the next *size* bytes are message data, whatever they hold."""
        parsed = parse_bdat(rest)
        if parsed is None:  # the chunk's end is unknown: its bytes cannot be told apart
            self.reply(replies.BDAT_SYNTAX)
            self._close()
            return None
        size, last = parsed
        tx = self.tx
        refusal = None
        if tx is None:
            refusal = replies.NEED_MAIL
        elif not tx.recipients:
            refusal = replies.NO_VALID_RECIPIENTS
        elif self._chunked is None:  # the first chunk of the message
            self._start_data(*self._trace_headers(tx))
            assert self._receiver is not None
            self._chunked = ChunkedMessage(self._receiver)
        self._chunk_left, self._chunk_last, self._chunk_refusal = size, last, refusal
        self.mode = CHUNK
        self.setTimeout(self.limits.data_timeout)
        if size == 0:
            return self._end_of_chunk()
        return None

    def _take_chunk(self) -> bool:
        """Move the current chunk's bytes from the input to the message (or drop them for
        a refused chunk); True once the whole chunk is in."""
        piece = bytes(self._input[: self._chunk_left])
        del self._input[: len(piece)]
        self._chunk_left -= len(piece)
        if self._chunk_refusal is None and self._chunked is not None and piece:
            self._chunked.add(piece)
        return self._chunk_left == 0

    def _end_of_chunk(self) -> Any:
        self.mode = COMMAND
        self.setTimeout(self.limits.command_timeout)
        refusal, self._chunk_refusal = self._chunk_refusal, None
        chunked, tx = self._chunked, self.tx
        if refusal is not None or chunked is None or tx is None:
            return self.reply(refusal or replies.NEED_MAIL)
        if self._chunk_last:
            chunked.end()
            return self._end_of_data()
        result = chunked.receiver.result()
        if result.too_big or result.write_failed:  # refuse now, not after gigabytes more
            refused = self._refused(result, tx)
            self._abort_data()
            self.tx = None
            return self.reply(refused or replies.LOCAL_ERROR)
        return self.reply(replies.chunk_received(chunked.received))

    # -- simple commands ---------------------------------------------------------------

    def do_RSET(self, rest: bytes) -> None:
        """RSET: forget the transaction."""
        self._reset_transaction()
        self.reply(replies.RESET)

    def do_NOOP(self, rest: bytes) -> None:
        """NOOP."""
        self.reply(replies.OK)

    def do_QUIT(self, rest: bytes) -> None:
        """QUIT: 221 and close."""
        self.reply(replies.CLOSING)
        self._close()

    def do_VRFY(self, rest: bytes) -> None:
        """VRFY: never tells whether a user exists."""
        self.reply(replies.CANNOT_VRFY if rest else replies.SYNTAX)

    def do_EXPN(self, rest: bytes) -> None:
        """EXPN: not offered."""
        self.reply(replies.NOT_IMPLEMENTED)

    def do_HELP(self, rest: bytes) -> None:
        """HELP."""
        self.reply(replies.HELP)

    # -- STARTTLS ------------------------------------------------------------------------

    def ext_STARTTLS(self, rest: bytes) -> None:
        """STARTTLS: plaintext after the command is discarded; the session starts over."""
        if rest:
            return self.reply(replies.SYNTAX)
        if self.startedTLS:
            return self.reply(replies.TLS_ALREADY)
        if not self.canStartTLS:
            return self.reply(replies.TLS_UNAVAILABLE)
        self.reply(replies.TLS_READY)
        self._input.clear()  # no command injection: nothing sent in clear carries over
        self.helo = None
        self.user = None
        self.esmtp = False
        self._reset_transaction()
        self._write_replies()  # the 220 goes in plaintext, before the handshake
        self._transport.startTLS(self.ctx)
        self.startedTLS = True

    # -- AUTH ----------------------------------------------------------------------------

    def _auth_allowed(self) -> bool:
        if self.startedTLS:
            return True
        if not self.context.allow_plaintext_loopback:
            return False
        try:
            return ipaddress.ip_address(self.client_ip).is_loopback
        except ValueError:
            return False

    def ext_AUTH(self, rest: bytes) -> Any:
        """AUTH PLAIN / LOGIN, only over TLS (538 before)."""
        if not self._auth_allowed():
            return self.reply(replies.AUTH_NEEDS_TLS)
        if self.helo is None or not self.esmtp:
            return self.reply(replies.HELO_FIRST)
        if self.user is not None:
            return self.reply(replies.AUTH_ALREADY)
        if self.tx is not None:
            return self.reply(replies.AUTH_IN_TRANSACTION)
        mechanism, _, initial = rest.partition(b" ")
        if mechanism.upper() not in MECHANISMS:
            return self.reply(replies.AUTH_MECHANISM)
        self._sasl = SaslExchange(mechanism.upper())
        return self._sasl_step(initial.strip() or None)

    def _auth_response(self, line: bytes) -> Any:
        return self._sasl_step(line)

    def _sasl_step(self, response: bytes | None) -> Any:
        assert self._sasl is not None
        try:
            step = self._sasl.step(response)
        except SaslError as e:
            self._sasl = None
            self.mode = COMMAND
            if e.kind == "aborted":
                return self.reply(replies.AUTH_ABORTED)
            if e.kind == "base64":
                return self.reply(replies.AUTH_BAD_BASE64)
            return self._auth_refused()
        if isinstance(step, bytes):
            self.mode = AUTH
            return self.reply(Reply(334, "", base64.b64encode(step).decode("ascii")))
        self._sasl = None
        self.mode = COMMAND
        return self._authenticate(step)

    async def _auth_refused(self) -> None:
        self.context.stats.auth_failed += 1
        await self.context.authenticator.refused("", self.client_ip, "malformed SASL data")
        self.reply(replies.AUTH_FAILED)

    async def _authenticate(self, credentials: Credentials) -> None:
        try:
            address = await self.context.authenticator.authenticate(credentials, self.client_ip)
            account = None if address is None else await self.context.store.accounts.find(address)
        except StoreUnavailable:
            return self.reply(replies.AUTH_TEMPORARY)
        if account is None:
            self.context.stats.auth_failed += 1
            return self.reply(replies.AUTH_FAILED)
        self.user = AuthUser(account.address, account.id)
        self.context.stats.auth_succeeded += 1
        self.reply(replies.AUTH_OK)
