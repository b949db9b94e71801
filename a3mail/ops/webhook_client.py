"""POSTing one webhook delivery: signed, with treq, only to permitted addresses.

The connection goes through :class:`GuardedEndpointFactory`: the target's host name is
resolved with the reactor's resolver, every address it resolves to is judged by
:func:`~a3mail.store.webhook_targets.address_refusal`, and the TCP connection is made to a
permitted *address* (not to the name again), so a name that resolves to a private address,
or is re-pointed there between two lookups (DNS rebinding), never gets a connection.  TLS
still verifies the certificate against the host name.  Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from treq.client import HTTPClient
from treq.cookies import IndexableCookieJar
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import (
    ConnectError,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
)
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from a3mail import __version__
from a3mail.logs import get_logger
from a3mail.store.webhook_targets import (
    IPAddress,
    TargetRefused,
    address_refusal,
    parse_address,
)
from a3mail.store.webhooks import AttemptOutcome, DueDelivery

log = get_logger(__name__)

USER_AGENT = f"a3mail/{__version__}"
SIGNATURE_HEADER = "X-A3mail-Signature"
TIMESTAMP_HEADER = "X-A3mail-Timestamp"
EVENT_HEADER = "X-A3mail-Event"
DELIVERY_HEADER = "X-A3mail-Delivery"
MAX_RESPONSE_BODY = 64 * 1024  # read (and discarded) at most; the status is what counts
MAX_ADDRESSES_TRIED = 4


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of *body* keyed by *secret*."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def delivery_headers(delivery: DueDelivery, timestamp: int) -> dict[str, str]:
    """The request headers of one delivery, sent at unix time *timestamp*."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(delivery.secret, delivery.body),
    }


# -- resolution and the guarded connection -------------------------------------------------


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects the addresses of one host-name resolution into a Deferred."""

    def __init__(self) -> None:
        self.found: list[IPAddress] = []
        self.done: defer.Deferred[list[IPAddress]] = defer.Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """Nothing to do."""

    def addressResolved(self, address: Any) -> None:
        """Keep each IPv4/IPv6 address."""
        parsed = parse_address(getattr(address, "host", ""))
        if parsed is not None and parsed not in self.found:
            self.found.append(parsed)

    def resolutionComplete(self) -> None:
        """Hand over what was found."""
        self.done.callback(self.found)


async def resolve(resolver: IHostnameResolver, host: str, port: int) -> list[IPAddress]:
    """Every address *host* resolves to (a literal address is returned as is)."""
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    receiver = _Addresses()
    resolver.resolveHostName(receiver, host, port)
    found = await receiver.done
    if not found:
        raise DNSLookupError(host)
    return found


@implementer(IStreamClientEndpoint)
class GuardedEndpoint:
    """Connects to *host*:*port* only through addresses the policy permits."""

    def __init__(
        self,
        reactor: Any,
        resolver: IHostnameResolver,
        host: str,
        port: int,
        *,
        tls: IOpenSSLClientConnectionCreator | None,
        allow_private: bool,
        connect_timeout: float,
    ) -> None:
        self.reactor = reactor
        self.resolver = resolver
        self.host = host
        self.port = port
        self.tls = tls
        self.allow_private = allow_private
        self.connect_timeout = connect_timeout

    def connect(self, protocolFactory: Any) -> defer.Deferred[IProtocol]:
        """Resolve, refuse forbidden addresses, connect to the first permitted one that
        answers."""
        return defer.Deferred.fromCoroutine(self._connect(protocolFactory))

    async def _connect(self, factory: Any) -> IProtocol:
        addresses = await resolve(self.resolver, self.host, self.port)
        permitted = self.permitted(addresses)
        error: Exception = ConnectError(string="no address")
        for address in permitted[:MAX_ADDRESSES_TRIED]:
            kind = TCP4ClientEndpoint if address.version == 4 else TCP6ClientEndpoint
            endpoint: IStreamClientEndpoint = kind(
                self.reactor, str(address), self.port, timeout=self.connect_timeout
            )
            if self.tls is not None:
                endpoint = wrapClientTLS(self.tls, endpoint)
            try:
                return await endpoint.connect(factory)  # type: ignore[no-any-return]
            except ConnectError as e:
                error = e
        raise error

    def permitted(self, addresses: list[IPAddress]) -> list[IPAddress]:
        """The addresses that may be used; TargetRefused if there is none."""
        if self.allow_private:
            return addresses
        allowed = [a for a in addresses if address_refusal(a) is None]
        if not allowed:
            reason = address_refusal(addresses[0])
            if parse_address(self.host) is not None:
                raise TargetRefused(f"refused: {self.host} is a {reason} address")
            raise TargetRefused(f"refused: {self.host} resolves to a {reason} address")
        return allowed


@implementer(IAgentEndpointFactory)
class GuardedEndpointFactory:
    """An Agent endpoint factory whose endpoints are :class:`GuardedEndpoint`."""

    def __init__(
        self,
        reactor: Any,
        *,
        resolver: IHostnameResolver | None = None,
        allow_private: bool = False,
        connect_timeout: float = 10.0,
        tls_policy: IPolicyForHTTPS | None = None,
    ) -> None:
        self.reactor = reactor
        self.resolver = resolver if resolver is not None else reactor.nameResolver
        self.allow_private = allow_private
        self.connect_timeout = connect_timeout
        self.tls_policy = tls_policy if tls_policy is not None else BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        """The guarded endpoint for a request to *uri*."""
        host = uri.host.decode("ascii").strip("[]")
        tls = None
        if uri.scheme == b"https":
            tls = self.tls_policy.creatorForNetloc(host.encode("ascii"), uri.port)
        elif uri.scheme != b"http":
            raise TargetRefused("refused: only http and https URLs are used")
        return GuardedEndpoint(
            self.reactor,
            self.resolver,
            host,
            uri.port,
            tls=tls,
            allow_private=self.allow_private,
            connect_timeout=self.connect_timeout,
        )


# -- posting ----------------------------------------------------------------------------------


class _Drain(Protocol):
    """Reads and discards a response body, stopping after MAX_RESPONSE_BODY bytes."""

    def __init__(self, done: defer.Deferred[None]) -> None:
        self.done = done
        self.received = 0

    def dataReceived(self, data: bytes) -> None:
        """Count and drop; hang up on a body that is too long."""
        self.received += len(data)
        if self.received > MAX_RESPONSE_BODY and self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """The body is over (or was cut off): either way the status is known."""
        if not self.done.called:
            self.done.callback(None)


def _drain(response: IResponse) -> defer.Deferred[None]:
    protocol: _Drain

    def cancel(_: defer.Deferred[None]) -> None:
        if protocol.transport is not None:
            protocol.transport.stopProducing()  # type: ignore[attr-defined]

    done: defer.Deferred[None] = defer.Deferred(cancel)
    protocol = _Drain(done)
    response.deliverBody(protocol)
    return done


def describe(failure: Failure, timeout: float) -> str:
    """A short, safe description of why an attempt failed (shown in the deliveries list)."""
    error = failure.value
    if isinstance(error, TargetRefused):
        return str(error)
    if isinstance(error, defer.TimeoutError | TCPTimedOutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, DNSLookupError):
        return "DNS lookup failed"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectError):
        return "cannot connect"
    reasons = getattr(error, "reasons", None) or []
    if any("SSL" in type(r.value).__module__ or "TLS" in type(r.value).__name__ for r in reasons):
        return "TLS failure"
    return f"request failed ({type(error).__name__})"


class WebhookClient:
    """Sends deliveries: one signed POST each, within *timeout* seconds in all (resolution,
    connection, request and response)."""

    def __init__(
        self,
        reactor: Any,
        *,
        clock: Any = None,
        resolver: IHostnameResolver | None = None,
        allow_private: bool = False,
        timeout: float = 10.0,
        tls_policy: IPolicyForHTTPS | None = None,
    ) -> None:
        self.clock = clock if clock is not None else reactor
        self.timeout = timeout
        endpoints = GuardedEndpointFactory(
            reactor,
            resolver=resolver,
            allow_private=allow_private,
            connect_timeout=timeout,
            tls_policy=tls_policy,
        )
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent.usingEndpointFactory(reactor, endpoints, pool=pool)

    def post(self, delivery: DueDelivery) -> defer.Deferred[AttemptOutcome]:
        """POST *delivery*; fires with the outcome (a failed attempt is an outcome, not an
        error).  Cancelling it (shutdown) aborts the request and fails with CancelledError."""
        started = self.clock.seconds()
        client = HTTPClient(self.agent, cookiejar=IndexableCookieJar())
        request = client.post(
            delivery.url,
            data=delivery.body,
            headers=Headers({k: [v] for k, v in delivery_headers(delivery, int(started)).items()}),
            allow_redirects=False,
            unbuffered=True,
        )
        request.addCallback(self._read)
        request.addTimeout(self.timeout, self.clock, onTimeoutCancel=_timed_out)
        aborted = False

        def abort(_: defer.Deferred[AttemptOutcome]) -> None:
            nonlocal aborted
            aborted = True  # the outer Deferred then fails with CancelledError
            request.cancel()

        outer: defer.Deferred[AttemptOutcome] = defer.Deferred(abort)

        def finish(result: int | Failure) -> None:
            if aborted:
                return
            moment = datetime.fromtimestamp(started, UTC)
            duration = max(0.0, self.clock.seconds() - started)
            if isinstance(result, Failure):
                log.debug(
                    "webhook delivery {id} to {url} failed: {error!r}",
                    id=delivery.id,
                    url=delivery.url,
                    error=result.value,
                )
                outer.callback(
                    AttemptOutcome(moment, duration, error=describe(result, self.timeout))
                )
            else:
                outer.callback(AttemptOutcome(moment, duration, response_status=result))

        request.addBoth(finish)
        return outer

    @staticmethod
    def _read(response: Any) -> defer.Deferred[int]:
        return _drain(response).addCallback(lambda _: int(response.code))


def _timed_out(result: Any, timeout: float) -> Any:
    """addTimeout's translation: whatever failure the cancellation caused is a timeout."""
    if isinstance(result, Failure):
        raise defer.TimeoutError(timeout, "webhook delivery")
    return result
