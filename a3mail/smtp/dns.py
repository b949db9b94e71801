"""DNS for inbound authentication: an interface, twisted.names behind it, a static table.

SPF, DKIM and DMARC only need a handful of record types and a clear split between
"there is no such data" (an empty list) and "the answer could not be had right now"
(L{DNSTemporaryError}).  L{DNSResolver} states that contract; L{TwistedNamesResolver}
implements it over C{twisted.names.client} with a bounded total time per lookup, and
L{StaticResolver} serves a dict for tests and closed networks.

Names are compared in a normal form (L{normalize_name}): lower case, no trailing dot,
IDNA A-labels.  A name that cannot exist in the DNS (an empty or over-long label, more
than 253 octets) is answered with no data without any query.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from a3mail.logs import get_logger

__all__ = [
    "NO_ANSWER",
    "DNSResolver",
    "DNSTemporaryError",
    "StaticResolver",
    "TwistedNamesResolver",
    "normalize_name",
    "reverse_pointer_name",
]

log = get_logger(__name__)

_T = TypeVar("_T")

#: The longest domain name, in octets of its text form without the trailing dot.
MAX_NAME_LENGTH = 253
#: The longest label.
MAX_LABEL_LENGTH = 63


class DNSTemporaryError(Exception):
    """A lookup failed for a reason that may go away: timeout, SERVFAIL, REFUSED, no server."""


class DNSResolver(Protocol):
    """
    The DNS lookups inbound authentication needs.

    Every method answers a list, empty for NXDOMAIN or for a name without data of that
    type, and fails with L{DNSTemporaryError} when no answer could be had.
    """

    def txt(self, name: str) -> Deferred[list[bytes]]:
        """TXT records of C{name}, each record's strings joined into one bytes value."""

    def a(self, name: str) -> Deferred[list[str]]:
        """IPv4 addresses of C{name} in dotted-quad form."""

    def aaaa(self, name: str) -> Deferred[list[str]]:
        """IPv6 addresses of C{name} in compressed form."""

    def mx(self, name: str) -> Deferred[list[tuple[int, str]]]:
        """(preference, exchange) pairs of C{name}; exchange normalised, C{""} for a null MX."""

    def ptr(self, name: str) -> Deferred[list[str]]:
        """Host names of a reverse name such as C{1.2.0.192.in-addr.arpa}."""


def normalize_name(name: str) -> str | None:
    """
    The canonical form of a domain name for lookups and comparisons, or L{None}.

    Lower case, without a trailing dot, non-ASCII labels as IDNA A-labels.  L{None} for a
    name that cannot be queried: empty, an empty label, a label over 63 octets, more than
    253 octets, characters that are not printable ASCII after IDNA, or spaces.
    """
    name = name.strip().rstrip(".").lower() if name else ""
    if not name:
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower()
        except (UnicodeError, ValueError):
            return None
    if len(name) > MAX_NAME_LENGTH:
        return None
    for label in name.split("."):
        if not label or len(label) > MAX_LABEL_LENGTH:
            return None
        if not all(0x21 <= ord(ch) <= 0x7E for ch in label):
            return None
    return name


def reverse_pointer_name(address: str) -> str:
    """The C{in-addr.arpa} / C{ip6.arpa} name whose PTR records name the host at C{address}."""
    return ipaddress.ip_address(address).reverse_pointer


# -- a static table -------------------------------------------------------------------------


class _NoAnswer:
    """The marker for a lookup that never completes (until cancelled)."""

    def __repr__(self) -> str:
        return "NO_ANSWER"


#: In a L{StaticResolver} table, a lookup that never answers (a cancellable Deferred).
NO_ANSWER: Any = _NoAnswer()


class StaticResolver:
    """
    A L{DNSResolver} over a dict, for tests and closed networks.

    Keys are C{(type, name)} with type one of C{TXT A AAAA MX PTR}; values are the answer
    list (TXT values as bytes or str; MX as C{(preference, exchange)}), an exception
    instance to fail with (e.g. C{DNSTemporaryError("timeout")}), or L{NO_ANSWER} for a
    lookup that never completes.  Missing keys answer an empty list.  Every lookup is
    appended to L{queries} as C{(type, name)}.
    """

    def __init__(self, records: Mapping[tuple[str, str], Any] | None = None) -> None:
        self.records: dict[tuple[str, str], Any] = {}
        for (rtype, name), value in (records or {}).items():
            self.records[(rtype.upper(), normalize_name(name) or name.lower())] = value
        self.queries: list[tuple[str, str]] = []

    def _answer(self, rtype: str, name: str, convert: Callable[[Any], _T]) -> Deferred[list[_T]]:
        key_name = normalize_name(name)
        self.queries.append((rtype, key_name or name))
        if key_name is None:
            return succeed([])
        value = self.records.get((rtype, key_name), [])
        if value is NO_ANSWER:
            return Deferred()
        if isinstance(value, BaseException):
            return fail(value)
        return succeed([convert(item) for item in value])

    def txt(self, name: str) -> Deferred[list[bytes]]:
        """TXT records from the table."""
        return self._answer("TXT", name, lambda v: v.encode() if isinstance(v, str) else bytes(v))

    def a(self, name: str) -> Deferred[list[str]]:
        """A records from the table."""
        return self._answer("A", name, str)

    def aaaa(self, name: str) -> Deferred[list[str]]:
        """AAAA records from the table."""
        return self._answer("AAAA", name, str)

    def mx(self, name: str) -> Deferred[list[tuple[int, str]]]:
        """MX records from the table."""
        return self._answer("MX", name, lambda v: (int(v[0]), normalize_name(v[1]) or ""))

    def ptr(self, name: str) -> Deferred[list[str]]:
        """PTR records from the table."""
        return self._answer("PTR", name, lambda v: normalize_name(v) or "")


# -- twisted.names --------------------------------------------------------------------------


class TwistedNamesResolver:
    """
    A L{DNSResolver} over C{twisted.names.client}, each lookup bounded by C{timeout} seconds.

    @param reactor: the reactor (UDP, TCP and time).
    @param timeout: the most time one lookup takes, all retries and servers included; a
        lookup still unanswered then fails with L{DNSTemporaryError}.
    @param servers: C{(host, port)} name servers; L{None} reads C{/etc/resolv.conf}
        (re-read when it changes).
    """

    def __init__(
        self,
        reactor: Any,
        timeout: float = 5.0,
        servers: list[tuple[str, int]] | None = None,
    ) -> None:
        from twisted.names import client

        self.timeout = timeout
        if servers:
            self._client = client.Resolver(servers=list(servers), reactor=reactor)
        else:
            self._client = client.Resolver(resolv="/etc/resolv.conf", reactor=reactor)

    def _tries(self) -> tuple[float, ...]:
        # twisted.names asks every server with the first timeout, then every server with
        # the next one: the sum over servers and tries must stay within self.timeout.
        count = max(1, len(self._client.servers) + len(self._client.dynServers))
        return (self.timeout * 0.2 / count, self.timeout * 0.8 / count)

    def _lookup(
        self,
        method: str,
        name: str,
        rtype: int,
        convert: Callable[[Any], _T | None],
    ) -> Deferred[list[_T]]:
        query_name = normalize_name(name)
        if query_name is None:
            return succeed([])
        try:
            inner = getattr(self._client, method)(query_name, timeout=self._tries())
        except Exception as exc:
            log.debug("DNS lookup of {name} failed: {exc!r}", name=query_name, exc=exc)
            return fail(DNSTemporaryError(f"lookup of {query_name} failed"))
        result: Deferred[list[_T]] = Deferred(lambda d: None)

        def answered(sections: Sequence[Any]) -> None:
            if result.called:
                return
            try:
                selected = _select(sections[0], query_name, rtype, convert)
            except Exception as exc:
                log.debug("bad DNS answer for {name}: {exc!r}", name=query_name, exc=exc)
                result.errback(DNSTemporaryError(f"bad answer for {query_name}"))
            else:
                result.callback(selected)

        def failed(reason: Failure) -> None:
            from twisted.names import error

            if result.called:
                return
            if reason.check(error.DNSNameError):
                result.callback([])
                return
            log.debug(
                "DNS lookup of {name} failed: {reason}",
                name=query_name,
                reason=reason.getErrorMessage(),
            )
            result.errback(DNSTemporaryError(f"lookup of {query_name} failed"))

        # The inner Deferred is never cancelled (twisted.names leaves its retry timer
        # behind when it is): cancelling ours only detaches it, and the inner lookup
        # ends by itself within self.timeout.
        inner.addCallbacks(answered, failed)
        return result

    def txt(self, name: str) -> Deferred[list[bytes]]:
        """TXT records, each record's strings joined."""
        from twisted.names import dns

        return self._lookup("lookupText", name, dns.TXT, lambda p: b"".join(p.data))

    def a(self, name: str) -> Deferred[list[str]]:
        """IPv4 addresses."""
        from twisted.names import dns

        return self._lookup("lookupAddress", name, dns.A, lambda p: p.dottedQuad())

    def aaaa(self, name: str) -> Deferred[list[str]]:
        """IPv6 addresses."""
        from twisted.names import dns

        return self._lookup(
            "lookupIPV6Address", name, dns.AAAA, lambda p: str(ipaddress.IPv6Address(p.address))
        )

    def mx(self, name: str) -> Deferred[list[tuple[int, str]]]:
        """MX records."""
        from twisted.names import dns

        return self._lookup(
            "lookupMailExchange",
            name,
            dns.MX,
            lambda p: (int(p.preference), normalize_name(_text(p.name.name)) or ""),
        )

    def ptr(self, name: str) -> Deferred[list[str]]:
        """PTR records."""
        from twisted.names import dns

        return self._lookup(
            "lookupPointer", name, dns.PTR, lambda p: normalize_name(_text(p.name.name))
        )


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace")


def _select(
    answers: Iterable[Any], query_name: str, rtype: int, convert: Callable[[Any], _T | None]
) -> list[_T]:
    """The answers of type C{rtype} for C{query_name}, following the CNAME chain from it."""
    from twisted.names import dns

    answers = list(answers)
    owners = {query_name}
    changed = True
    while changed:  # CNAMEs may be listed in any order
        changed = False
        for rr in answers:
            if rr.type == dns.CNAME and normalize_name(_text(rr.name.name)) in owners:
                target = normalize_name(_text(rr.payload.name.name))
                if target and target not in owners:
                    owners.add(target)
                    changed = True
    selected: list[_T] = []
    for rr in answers:
        if rr.type == rtype and normalize_name(_text(rr.name.name)) in owners:
            value = convert(rr.payload)
            if value is not None:
                selected.append(value)
    return selected
