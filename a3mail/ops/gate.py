"""The connection gate: every listener refuses blocked client addresses on accept.

``A3MailService`` wraps each listener's protocol factory (after the implicit-TLS wrapping)
in a :class:`BlocklistGate`.  When a connection is accepted, the gate looks the peer address
up in the store's in-memory :class:`~a3mail.store.ipmatch.BlockMatcher`:

- not blocked: the listener's own factory builds the protocol, untouched (the gate adds no
  layer to the connection: the protocol talks to the real transport, so STARTTLS and peer
  certificates work as before);
- blocked: a :class:`RefusedConnection` takes the connection, writes the listener's refusal
  line if it has one (plain-text SMTP listeners: ``554 5.7.1``), and closes it.  Nothing of
  the real protocol runs, so a blocked client costs one dict look-up per distinct prefix
  length and one write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import ILoggingContext, IProtocolFactory
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from a3mail.logs import get_logger

log = get_logger(__name__)

SMTP_REFUSAL = b"554 5.7.1 Access denied: your address is blocked\r\n"
# What each plain-text listener says before closing on a blocked client; others just close.
REFUSALS: dict[str, bytes] = {"smtp": SMTP_REFUSAL, "submission": SMTP_REFUSAL}


class RefusedConnection(Protocol):
    """Takes a blocked client's connection: writes *refusal* (if any), then closes."""

    def __init__(self, refusal: bytes = b"") -> None:
        self.refusal = refusal

    def connectionMade(self) -> None:
        """Say why (if the protocol has a way to) and close at once."""
        transport = self.transport
        assert transport is not None
        if self.refusal:
            transport.write(self.refusal)
        transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """Ignore whatever the client sends meanwhile."""


@implementer(IProtocolFactory, ILoggingContext)
class BlocklistGate:
    """A protocol factory standing in front of *wrapped* (``wrappedFactory``, as Twisted
    names it): refuses blocked peers.

    *blocks(address, now)* says whether a peer address is blocked; *clock* gives now.  Any
    attribute not defined here is the wrapped factory's.
    """

    def __init__(
        self,
        name: str,
        wrapped: Any,
        blocks: Callable[[str, float], bool],
        clock: Any,
        refusal: bytes = b"",
    ) -> None:
        self.name = name
        self.wrappedFactory = wrapped
        self.blocks = blocks
        self.clock = clock
        self.refusal = refusal
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        if name == "wrappedFactory":  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.wrappedFactory, name)

    def logPrefix(self) -> str:
        """The wrapped factory's log prefix."""
        prefix = getattr(self.wrappedFactory, "logPrefix", None)
        return str(prefix()) if prefix is not None else type(self.wrappedFactory).__name__

    def doStart(self) -> None:
        """Start the wrapped factory (the port started listening)."""
        self.wrappedFactory.doStart()

    def doStop(self) -> None:
        """Stop the wrapped factory (the port stopped listening)."""
        self.wrappedFactory.doStop()

    def buildProtocol(self, addr: Any) -> Any:
        """The wrapped factory's protocol, or a :class:`RefusedConnection` for a blocked peer."""
        host = getattr(addr, "host", None)
        if isinstance(host, str) and self.blocks(host, float(self.clock.seconds())):
            self.refused += 1
            log.info("{listener}: refused blocked address {ip}", listener=self.name, ip=host)
            refused = RefusedConnection(self.refusal)
            refused.factory = self  # type: ignore[assignment]
            return refused
        return self.wrappedFactory.buildProtocol(addr)


def gate_factory(name: str, factory: Any, runtime: Any, *, implicit_tls: bool = False) -> Any:
    """*factory* behind a :class:`BlocklistGate` over ``runtime.store.blocklist``'s matcher.

    Implicit-TLS listeners get no refusal line (the client expects a TLS handshake).
    """
    refusal = b"" if implicit_tls else REFUSALS.get(name, b"")
    matcher = runtime.store.blocklist.matcher
    return BlocklistGate(name, factory, matcher.blocks, runtime.reactor, refusal)
