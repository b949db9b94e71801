"""The ESMTP client of outbound delivery: one transaction on one connection to one hop.

:class:`DeliveryClient` is ``twisted.mail.smtp.ESMTPClient`` with what delivery needs:
opportunistic STARTTLS (with a non-verifying context by default, so self-signed MX hosts
still get encryption), PIPELINING of the RCPT commands when offered, ``SIZE=`` on MAIL FROM
(and a message too big for the server's SIZE fails at once), per-recipient results, CRLF
message files streamed with FileSender (dot-stuffing across chunk boundaries; the message
is never read whole into memory) and a command timeout.  :func:`deliver_to_hop` connects
with a connect timeout and returns an :class:`Attempt`; failures of the whole session
raise :class:`SessionError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import attrs
from twisted.internet import defer, endpoints, error, ssl
from twisted.mail import smtp
from twisted.python.failure import Failure

from a3mail.outbound.mx import Hop

SUCCESS = range(200, 300)


@attrs.frozen
class Attempt:
    """The per-recipient replies (code, text) of one transaction, and the hop's name."""

    remote: str
    replies: dict[str, tuple[int, str]]


class SessionError(Exception):
    """The session failed before any recipient got an answer: *code* applies to all
    (4xx or a connection problem: try the next hop or retry later; 5xx: fail)."""

    def __init__(self, code: int, reply: str, remote: str = "") -> None:
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply
        self.remote = remote

    @property
    def permanent(self) -> bool:
        """A 5xx answer: retrying will not help."""
        return 500 <= self.code < 600


@attrs.frozen
class ClientSettings:
    """How to talk to a hop: our EHLO name, timeouts, TLS mode and credentials.

    *tls*: ``"starttls"`` (opportunistic), ``"require-starttls"``, ``"tls"`` (implicit) or
    ``"none"``; *verify*: check the certificate against the hop's host name.
    """

    helo_name: str
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    tls: str = "starttls"
    verify: bool = False
    username: str | None = None
    password: str | None = None


class PrefixedFile:
    """A read-only file-like object: *prefix* bytes (e.g. a DKIM-Signature), then *file*."""

    def __init__(self, prefix: bytes, file: IO[bytes]) -> None:
        self._prefix = prefix
        self._file = file

    def read(self, size: int = -1) -> bytes:
        """Up to *size* bytes (all with a negative size)."""
        if self._prefix:
            if size < 0:
                chunk, self._prefix = self._prefix + self._file.read(), b""
                return chunk
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        return self._file.read(size)

    def close(self) -> None:
        """Close the underlying file."""
        self._file.close()


def _tls_options(settings: ClientSettings, host: str) -> Any:
    if settings.verify:
        return ssl.optionsForClientTLS(host)
    return ssl.CertificateOptions(verify=False)


class DeliveryClient(smtp.ESMTPClient):
    """One mail transaction; :attr:`result` fires with an :class:`Attempt` or fails with
    a :class:`SessionError`."""

    def __init__(
        self,
        settings: ClientSettings,
        host: str,
        sender: str,
        recipients: Sequence[str],
        message: Any,
        size: int,
    ) -> None:
        context = None if settings.tls == "none" else _tls_options(settings, host)
        super().__init__(
            settings.password.encode() if settings.password else None,
            context,
            settings.helo_name.encode("ascii", "replace"),
        )
        if settings.username:
            self.registerAuthenticator(smtp.PLAINAuthenticator(settings.username.encode()))
            self.registerAuthenticator(smtp.LOGINAuthenticator(settings.username.encode()))
            self.requireAuthentication = True
        # credentials never go in clear: with them, STARTTLS is required
        self.requireTransportSecurity = settings.tls == "require-starttls" or bool(
            settings.username and settings.tls == "starttls"
        )
        self.timeout = settings.command_timeout  # type: ignore[assignment]
        self.host = host
        self.sender = sender
        self.recipients = list(recipients)
        self.message = message
        self.size = size
        self.result: defer.Deferred[Attempt] = defer.Deferred()
        self.closed: defer.Deferred[None] = defer.Deferred()
        self._extensions: dict[bytes, bytes | None] = {}
        self._sent = False
        self._at_line_start = True
        self._rcpt_queue: list[str] = []

    # -- the ESMTP state machine, adapted ----------------------------------------------

    def esmtpState_serverConfig(self, code: int, resp: bytes) -> None:
        """Remember the server's extensions (SIZE, PIPELINING) before going on."""
        self._extensions = {}
        for line in resp.splitlines():
            words = line.split(None, 1)
            if words:
                self._extensions[words[0].upper()] = words[1] if len(words) > 1 else None
        super().esmtpState_serverConfig(code, resp)

    def getMailFrom(self) -> str | None:
        """The envelope sender, once ("" is the null sender)."""
        if self._sent:
            return None
        self._sent = True
        return self.sender

    def getMailTo(self) -> list[str]:
        """The recipients of this transaction."""
        return self.recipients

    def getMailData(self) -> Any:
        """The message file (positioned at its first byte to send)."""
        return self.message

    def smtpState_from(self, code: int, resp: bytes) -> None:
        """MAIL FROM with ``SIZE=`` when offered; refuse a message over the server's SIZE."""
        limit = self._extensions.get(b"SIZE")
        if not self._sent and limit and limit.strip().isdigit():
            maximum = int(limit)
            if 0 < maximum < self.size:
                self._sent = True
                self._finish_with_error(552, f"5.3.4 message too big for {self.host}")
                return
        if self._sent or b"SIZE" not in self._extensions:
            super().smtpState_from(code, resp)
            return
        self._from = self.getMailFrom()
        self._failresponse = self.smtpTransferFailed
        self.sendLine(b"MAIL FROM:" + smtp.quoteaddr(self._from) + b" SIZE=%d" % self.size)
        self._expected = [250]
        self._okresponse = self.smtpState_to

    def smtpState_to(self, code: int, resp: bytes) -> Any:
        """Send every RCPT at once when the server offers PIPELINING."""
        if b"PIPELINING" not in self._extensions:
            return super().smtpState_to(code, resp)
        self.toAddressesResult = []
        self.successAddresses = []
        self._rcpt_queue = list(self.getMailTo())
        self._expected = range(1000)  # type: ignore[assignment]
        self._okresponse = self._pipelined_rcpt
        for address in self._rcpt_queue:
            self.sendLine(b"RCPT TO:" + smtp.quoteaddr(address))
        return None

    def _pipelined_rcpt(self, code: int, resp: bytes) -> Any:
        address = self._rcpt_queue.pop(0)
        self.toAddressesResult.append((address, code, resp))
        if code in SUCCESS:
            self.successAddresses.append(address)
        if self._rcpt_queue:
            return None
        if not self.successAddresses:
            return self.smtpState_msgSent(-1, b"No recipients accepted")
        self.sendLine(b"DATA")
        self._expected = [354]
        self._okresponse = self.smtpState_data
        return None

    def transformChunk(self, chunk: bytes) -> bytes:
        """Dot-stuff a chunk of a CRLF file (a leading dot may follow a chunk boundary)."""
        self.resetTimeout()
        if not chunk:
            return chunk
        stuffed = chunk.replace(b"\n.", b"\n..")
        if self._at_line_start and chunk.startswith(b"."):
            stuffed = b"." + stuffed
        self._at_line_start = chunk.endswith(b"\n")
        return stuffed

    def finishedFileTransfer(self, lastsent: bytes) -> None:
        """End the data: ``.`` on a line of its own."""
        self.sendLine(b"." if self._at_line_start else b"\r\n.")

    def sentMail(self, code: int, resp: bytes, numOk: int, addresses: list[Any], log: Any) -> None:
        """Per-recipient replies: the RCPT reply of a refused recipient, the DATA reply
        (or the MAIL FROM reply) of the others."""
        final = (code, _text(resp))
        replies: dict[str, tuple[int, str]] = {}
        for address, rcpt_code, rcpt_resp in addresses:
            if rcpt_code in SUCCESS:
                replies[address] = final
            else:
                replies[address] = (rcpt_code, _text(rcpt_resp))
        for address in self.recipients:
            replies.setdefault(address, final)
        if not self.result.called:
            self.result.callback(Attempt(self.host, replies))

    def sendError(self, exc: Any) -> None:
        """A session-level failure: close and report it (never retried here)."""
        super().sendError(exc)
        code = getattr(exc, "code", -1)
        reply = _text(getattr(exc, "resp", b"")) or str(exc)
        if not isinstance(code, int) or code < 400:
            code = 421
            reply = f"4.4.2 {reply}"
        self._fail(SessionError(code, reply, self.host))

    def _finish_with_error(self, code: int, reply: str) -> None:
        self._fail(SessionError(code, reply, self.host))
        self._disconnectFromServer()

    def _fail(self, exc: SessionError) -> None:
        if not self.result.called:
            self.result.errback(Failure(exc))

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        """A connection lost before the transaction ended is a temporary failure."""
        super().connectionLost(reason)
        self._fail(SessionError(421, "4.4.2 connection lost", self.host))
        if not self.closed.called:
            self.closed.callback(None)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


async def deliver_to_hop(
    reactor: Any,
    hop: Hop,
    settings: ClientSettings,
    sender: str,
    recipients: Sequence[str],
    message: Any,
    size: int,
    active: set[DeliveryClient] | None = None,
) -> Attempt:
    """Connect to *hop* (implicit TLS when ``settings.tls == "tls"``) and run one
    transaction; raises :class:`SessionError` when no recipient got an answer.  The client
    is in *active* while it runs (so a stopping service can abort it)."""
    client = DeliveryClient(settings, hop.host, sender, recipients, message, size)
    if active is not None:
        active.add(client)
        client.closed.addBoth(lambda _: active.discard(client))
    if ":" in hop.address:
        endpoint: Any = endpoints.TCP6ClientEndpoint(
            reactor, hop.address, hop.port, timeout=settings.connect_timeout
        )
    else:
        endpoint = endpoints.TCP4ClientEndpoint(
            reactor, hop.address, hop.port, timeout=settings.connect_timeout
        )
    if settings.tls == "tls":
        endpoint = endpoints.wrapClientTLS(_tls_options(settings, hop.host), endpoint)
    try:
        await endpoints.connectProtocol(endpoint, client)
    except Exception as exc:
        raise SessionError(421, f"4.4.1 cannot connect to {hop.host}: {exc}", hop.host) from exc
    try:
        return await client.result
    finally:
        # wait for QUIT to close the connection (bounded), so none is left behind
        closing = client.closed
        closing.addTimeout(settings.command_timeout, reactor)
        try:
            await closing
        except defer.TimeoutError:
            if client.transport is not None:
                client.transport.abortConnection()  # type: ignore[attr-defined]
