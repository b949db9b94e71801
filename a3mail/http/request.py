"""The HTTP request of a3mail's API listener: a body size cap, client addresses, request ids.

:class:`ApiRequest` refuses a body over ``http.max_body`` as soon as its length is known (a
``Content-Length`` over the cap, or a chunked body growing past it): it answers 413 with the
JSON error body and closes the connection, without reading the rest.  Bodies under the cap
are kept as usual (in memory up to 100 KiB, then a temporary file).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.web.server import Request, Site

from a3mail.http.errors import PayloadTooLarge
from a3mail.http.responses import dumps, iso_from_epoch
from a3mail.logs import get_logger

log = get_logger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def new_request_id() -> str:
    """A fresh request id (``req_`` and 16 hex digits)."""
    return "req_" + secrets.token_hex(8)


@attrs.define
class RequestContext:
    """What the router learns about one request, kept on the request object."""

    request_id: str
    started: float
    client_ip: str
    principal: Any = None
    status: int = 0
    route: str = "unmatched"  # the matched route's template, for metrics
    audited: bool = False  # the handler recorded its change in the audit log


def context_of(request: Any) -> RequestContext:
    """The context the router attached to *request*."""
    context: RequestContext = request.a3mail_context
    return context


class _Discard:
    """A content sink for a refused body."""

    def write(self, data: bytes) -> None:
        """Drop the data."""

    def tell(self) -> int:
        """Nothing kept."""
        return 0

    def seek(self, *args: Any) -> int:
        """Nothing kept."""
        return 0

    def read(self, *args: Any) -> bytes:
        """Nothing kept."""
        return b""

    def close(self) -> None:
        """Nothing to close."""


class ApiRequest(Request):
    """A request whose body is capped at the site's ``max_body`` bytes."""

    refused = False
    _received = 0

    def _site(self) -> Any:
        return getattr(self.channel, "site", None)

    def _now(self) -> float:
        site = self._site()
        return site.clock_seconds() if hasattr(site, "clock_seconds") else time.time()

    def _max_body(self) -> int:
        return int(getattr(self._site(), "max_body", DEFAULT_MAX_BODY))

    def gotLength(self, length: int | None) -> None:
        """Refuse at once a declared length over the cap; else keep the body as usual."""
        if length is not None and length > self._max_body():
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        """Keep a chunk, refusing the request when the body grows past the cap."""
        if self.refused:
            return
        self._received += len(data)
        if self._received > self._max_body():
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Process the request unless it was refused already."""
        if self.refused:
            return
        super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        """Answer 413 (JSON) straight on the transport and close the connection."""
        self.refused = True
        old = getattr(self, "content", None)
        if old is not None and not isinstance(old, _Discard):
            old.close()
        self.content = _Discard()  # type: ignore[assignment]
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after this
        limit = self._max_body()
        error = PayloadTooLarge(
            f"the request body is larger than {limit} bytes", {"max_body": limit}
        )
        request_id = new_request_id()
        body = dumps(
            {
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "details": error.details,
                    "timestamp": iso_from_epoch(self._now()),
                    "request_id": request_id,
                }
            }
        )
        head = (
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\nX-Request-Id: %s\r\n\r\n"
        ) % (len(body), request_id.encode())
        log.info(
            "{request_id} {ip} refused: body over {limit} bytes",
            request_id=request_id,
            ip=getattr(self.getClientAddress(), "host", "?"),
            limit=limit,
        )
        transport = self.channel.transport
        if transport is not None:
            transport.write(head + body)
        self.channel.loseConnection()


class ApiSite(Site):
    """A Site making :class:`ApiRequest` requests, with the body cap and a clock."""

    requestFactory = ApiRequest
    noisy = False

    def __init__(
        self,
        resource: Any,
        *,
        max_body: int | Callable[[], int],
        clock: Any,
        timeout: float,
    ) -> None:
        super().__init__(resource, timeout=timeout, reactor=clock)
        self._max_body = max_body
        self.clock = clock
        self.requestFactory = ApiRequest  # type: ignore[assignment]

    @property
    def max_body(self) -> int:
        """The body cap now (a callable given at creation is asked each time: reloads)."""
        limit = self._max_body
        return limit() if callable(limit) else limit

    @max_body.setter
    def max_body(self, value: int) -> None:
        self._max_body = value

    def clock_seconds(self) -> float:
        """Now, by the site's clock."""
        return float(self.clock.seconds())

    def log(self, request: Any) -> None:
        """No Twisted access log: the router logs each request with its id."""


def parse_networks(items: Sequence[str]) -> tuple[Network, ...]:
    """``["192.0.2.1", "10.0.0.0/8"]`` as networks (ValueError if one is not an address)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def client_ip(request: Any, trusted_proxies: Sequence[Network] = ()) -> str:
    """The client's address: the peer, or with a trusted proxy as peer, the last address in
    ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = str(getattr(request.getClientAddress(), "host", "") or "unknown")
    if not trusted_proxies or not _in(peer, trusted_proxies):
        return peer
    header = request.getHeader(b"x-forwarded-for")
    if not header:
        return peer
    text = header.decode("latin-1") if isinstance(header, bytes) else str(header)
    hops = [h.strip() for h in text.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: trust only what we saw
        if not _in(str(address), trusted_proxies):
            return str(address)
    return peer


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
