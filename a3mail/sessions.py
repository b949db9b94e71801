"""The live protocol sessions of this process: one registry, filled by every listener.

The service wraps each listener's protocol factory in :class:`SessionTrackingFactory`, so
every accepted connection (SMTP, POP3, HTTP, IMAP, manhole...) is registered in the
runtime's :class:`SessionRegistry` when it is made and removed when it is lost: a protocol
front needs no code for that.  While the wrapped protocol handles an event (connection
made, data received, connection lost) the session is *current*: :func:`current_session`
returns it, and every event logged meanwhile (and from the coroutines and Deferred
callbacks started then) carries ``session_id``, ``session_protocol`` and ``peer``
(see :mod:`a3mail.logs`).

A protocol may add facts to its session in one line, e.g. after a login::

    session = current_session()
    if session is not None:
        session.user = address

and may say when closing it loses nothing (an HTTP connection between requests), so that
a graceful shutdown closes it at once instead of waiting::

    session.idle = lambda: not self.requests

Code outside a listener (tests, another transport) registers with
``runtime.sessions.register(protocol, peer, transport)`` and ends with
``runtime.sessions.unregister(session)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from twisted.internet.interfaces import ILoggingContext, IProtocolFactory, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from zope.interface import implementer

#: The session whose event is being handled, if any.
CURRENT: contextvars.ContextVar[LiveSession | None] = contextvars.ContextVar(
    "a3mail_session", default=None
)

#: How often a draining registry looks for sessions that ended or became idle (seconds).
DRAIN_POLL = 0.1
#: After the drain timeout: how long the goodbye may take before the connection is cut.
GOODBYE_GRACE = 1.0

_SMTP_BYE = b"421 4.3.2 Service shutting down, closing the connection\r\n"
_POP3_BYE = b"-ERR server shutting down\r\n"
_IMAP_BYE = b"* BYE server shutting down\r\n"
#: Listener name -> what its client is told when a shutdown closes the session.
GOODBYES: dict[str, bytes] = {
    "smtp": _SMTP_BYE,
    "submission": _SMTP_BYE,
    "submissions": _SMTP_BYE,
    "pop3": _POP3_BYE,
    "pop3s": _POP3_BYE,
    "imap": _IMAP_BYE,
    "imaps": _IMAP_BYE,
}


def current_session() -> LiveSession | None:
    """The session whose event is being handled now, or None outside any session."""
    return CURRENT.get()


@attrs.define(eq=False)
class LiveSession:
    """One open connection on one listener.

    ``protocol`` is the listener name (``smtp``, ``pop3s``, ``http``...); ``peer`` is
    ``host:port``; ``started`` an epoch time.  ``idle``, when set, tells whether the session
    may be closed now without losing work.
    """

    protocol: str
    session_id: str
    peer: str
    started: float
    transport: Any = attrs.field(default=None, repr=False)
    #: The protocol under any TLS layer (its transport closes cleanly, flushing TLS).
    channel: Any = attrs.field(default=None, repr=False)
    user: str | None = None
    idle: Callable[[], bool] | None = attrs.field(default=None, repr=False)
    #: Writes the protocol's goodbye (e.g. SMTP 421) before a shutdown closes the session.
    goodbye: Callable[[], None] | None = attrs.field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The session as JSON-friendly facts."""
        return {
            "protocol": self.protocol,
            "session_id": self.session_id,
            "peer": self.peer,
            "started": self.started,
            "user": self.user,
        }

    def is_idle(self) -> bool:
        """True if the protocol said that closing the session now loses nothing."""
        try:
            return self.idle is not None and bool(self.idle())
        except Exception:
            return False

    def close(self, abort: bool = False, goodbye: bool = False) -> None:
        """Close the connection (``abort``: at once, dropping unsent data; ``goodbye``:
        first tell the client, if the protocol has a goodbye)."""
        transport = self.transport
        if transport is None:
            return
        if goodbye and self.goodbye is not None and not abort:
            with contextlib.suppress(Exception):  # best effort: the client may be gone
                self.goodbye()
        if abort and hasattr(transport, "abortConnection"):
            transport.abortConnection()
        else:
            (getattr(self.channel, "transport", None) or transport).loseConnection()


def peer_of(transport: Any) -> str:
    """``host:port`` of a transport's peer (``?`` if unknown)."""
    try:
        address = transport.getPeer()
    except Exception:
        return "?"
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    port = getattr(address, "port", None)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class SessionRegistry:
    """The live sessions of the process, by session id."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: dict[str, LiveSession] = {}

    def register(
        self, protocol: str, peer: str, transport: Any = None, session_id: str | None = None
    ) -> LiveSession:
        """Add an open session and return it (a fresh random id unless one is given)."""
        session = LiveSession(
            protocol=protocol,
            session_id=session_id or secrets.token_hex(6),
            peer=peer,
            started=self._clock(),
            transport=transport,
        )
        self._sessions[session.session_id] = session
        return session

    def unregister(self, session: LiveSession) -> None:
        """Remove a session that ended (no error if it is not there)."""
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]

    def __iter__(self) -> Iterator[LiveSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> LiveSession | None:
        """The session with that id, if open."""
        return self._sessions.get(session_id)

    def count_by_protocol(self) -> dict[str, int]:
        """How many sessions are open on each listener."""
        counts: dict[str, int] = {}
        for session in self._sessions.values():
            counts[session.protocol] = counts.get(session.protocol, 0) + 1
        return counts

    def snapshot(self) -> list[dict[str, Any]]:
        """Every open session as a dict, oldest first."""
        return [s.as_dict() for s in sorted(self._sessions.values(), key=lambda s: s.started)]

    async def drain(self, timeout: float, clock: IReactorTime) -> int:
        """Let the sessions end by themselves for up to *timeout* seconds, then close them.

        Idle sessions are closed as soon as they are seen idle.  At the deadline each
        session left gets its protocol's goodbye (SMTP 421, POP3 -ERR, IMAP BYE) and is
        closed; one that has not gone within GOODBYE_GRACE is cut.  Returns how many
        sessions were still open at the deadline.
        """
        deadline = clock.seconds() + timeout
        while self._sessions and clock.seconds() < deadline:
            for session in self:
                if session.is_idle():
                    session.close()
            await deferLater(clock, min(DRAIN_POLL, max(0.0, deadline - clock.seconds())))
        forced = len(self._sessions)
        for session in self:
            session.close(goodbye=True)
        await self._wait_empty(GOODBYE_GRACE, clock)
        for session in self:
            session.close(abort=True)
        # Let the aborted connections report their loss before the caller goes on.
        await self._wait_empty(GOODBYE_GRACE, clock)
        return forced

    async def _wait_empty(self, timeout: float, clock: IReactorTime) -> None:
        deadline = clock.seconds() + timeout
        while self._sessions and clock.seconds() < deadline:
            await deferLater(clock, DRAIN_POLL)


def track(protocol: Any, name: str, registry: SessionRegistry) -> Any:
    """Make *protocol*'s connection a live session of listener *name*.

    The protocol is not wrapped (its transport stays the real one, so STARTTLS and TLS
    checks work as before): its ``makeConnection``, ``dataReceived`` and
    ``connectionLost`` (and the innermost protocol's ``timeoutConnection``, for
    TimeoutMixin's idle timeout) are replaced on the instance by versions that run with
    the session current; ``connectionLost`` also removes the session from *registry*.
    """
    make_connection = protocol.makeConnection
    data_received = protocol.dataReceived
    connection_lost = protocol.connectionLost
    holder: list[LiveSession] = []

    def in_session(function: Callable[..., Any], *args: Any) -> None:
        token = CURRENT.set(holder[0] if holder else None)
        try:
            function(*args)
        finally:
            CURRENT.reset(token)

    def makeConnection(transport: Any) -> None:
        session = registry.register(name, peer_of(transport), transport=transport)
        inner = session.channel = innermost(protocol)
        if hasattr(inner, "requests"):  # twisted.web's HTTPChannel: idle between requests
            session.idle = lambda: not inner.requests
        if name in GOODBYES:  # through the innermost transport: TLS encrypts it
            session.goodbye = lambda: inner.transport.write(GOODBYES[name])
        timed_out = getattr(inner, "timeoutConnection", None)
        if callable(timed_out):  # TimeoutMixin's idle timeout fires from a timer
            inner.timeoutConnection = lambda: in_session(timed_out)
        holder.append(session)
        in_session(make_connection, transport)

    def dataReceived(data: bytes) -> None:
        in_session(data_received, data)

    def connectionLost(reason: Failure = connectionDone) -> None:
        try:
            in_session(connection_lost, reason)
        finally:
            if holder:
                registry.unregister(holder[0])

    protocol.makeConnection = makeConnection
    protocol.dataReceived = dataReceived
    protocol.connectionLost = connectionLost
    return protocol


@implementer(IProtocolFactory, ILoggingContext)
class SessionTrackingFactory:
    """Stands in front of a listener's factory: its connections become live sessions.

    Any attribute not defined here is the wrapped factory's.
    """

    noisy = False

    def __init__(self, wrapped: Any, name: str, registry: SessionRegistry) -> None:
        self.wrappedFactory = wrapped
        self.name = name
        self.registry = registry

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrappedFactory, name)

    def doStart(self) -> None:
        """Start the wrapped factory (the port started listening)."""
        self.wrappedFactory.doStart()

    def doStop(self) -> None:
        """Stop the wrapped factory (the port stopped listening)."""
        self.wrappedFactory.doStop()

    def buildProtocol(self, addr: Any) -> Any:
        """The wrapped factory's protocol, tracked (None if that factory refuses)."""
        protocol = self.wrappedFactory.buildProtocol(addr)
        return None if protocol is None else track(protocol, self.name, self.registry)

    def logPrefix(self) -> str:
        """The wrapped factory's prefix."""
        prefix = getattr(self.wrappedFactory, "logPrefix", None)
        return str(prefix()) if prefix is not None else self.name


def innermost(protocol: Any) -> Any:
    """The protocol under any wrappers: follows ``wrappedProtocol`` (TLS, policies) and
    ``_channel`` (twisted.web's generic HTTP channel)."""
    for _ in range(10):
        inner = getattr(protocol, "wrappedProtocol", None) or getattr(protocol, "_channel", None)
        if inner is None:
            break
        protocol = inner
    return protocol
