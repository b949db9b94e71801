"""Where mail for a domain goes: MX hosts by preference, their addresses, or a static table.

:func:`find_hops` answers the ordered list of :class:`Hop` (host name, address, port) to try:
every MX host by preference (equal preferences in random order), each host's AAAA and A
addresses; with no MX record, the domain's own addresses (RFC 5321 5.1 implicit MX).
A null MX (RFC 7505: one MX ``0 .``) fails at once with :class:`PermanentRouteError`
(556 5.1.10); a domain that does not exist fails the same way (550 5.1.2).  Any DNS
trouble, a lookup that takes longer than the timeout, or MX hosts none of which has an
address, is a :class:`TemporaryRouteError`: the entry is retried later.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred, TimeoutError

from a3mail.smtp.dns import DNSResolver, DNSTemporaryError, normalize_name

SMTP_PORT = 25


@attrs.frozen
class Hop:
    """One place to try: the host's name (for logs, DSNs and TLS), an address, a port."""

    host: str
    address: str
    port: int = SMTP_PORT


class RouteError(Exception):
    """No route to a domain: *code* and *status* are the SMTP reply and enhanced status."""

    code = 451
    status = "4.4.3"


class TemporaryRouteError(RouteError):
    """No route now (DNS failure or timeout, no address for any MX): retry later."""


class PermanentRouteError(RouteError):
    """No route ever: the recipients fail at once."""

    code = 550
    status = "5.1.2"


class NullMXError(PermanentRouteError):
    """The domain publishes a null MX (RFC 7505): it accepts no mail."""

    code = 556
    status = "5.1.10"


def parse_host_port(text: str, default_port: int = SMTP_PORT) -> tuple[str, int]:
    """``"host"``, ``"host:port"``, ``"[v6]:port"`` or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, default_port


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class MXFinder:
    """Finds the hops for a domain through a :class:`~a3mail.smtp.dns.DNSResolver`.

    *static* maps a domain to ``host:port`` strings used instead of DNS (tests, closed
    networks); a host there that is not an address is looked up (A/AAAA).  Every lookup
    is bounded by *timeout* seconds on *reactor*.
    """

    def __init__(
        self,
        resolver: DNSResolver,
        reactor: Any,
        *,
        timeout: float = 30.0,
        static: Mapping[str, Sequence[str]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        self.reactor = reactor
        self.timeout = timeout
        self.static = {(normalize_name(k) or k.lower()): list(v) for k, v in (static or {}).items()}
        self.rng = rng or random.Random()  # noqa: S311 (MX order, not secrets)

    async def find_hops(self, domain: str) -> list[Hop]:
        """The hops for *domain*, best first; raises a :class:`RouteError`."""
        name = normalize_name(domain)
        if name is None:
            raise PermanentRouteError(f"bad domain {domain!r}")
        if name in self.static:
            return await self.static_hops(self.static[name])
        records = await self._lookup(self.resolver.mx(name), f"MX {name}")
        if any(host == "" for _, host in records):
            if len(records) == 1 and records[0][0] == 0:
                raise NullMXError(f"{name} accepts no mail (null MX)")
            records = [r for r in records if r[1]]
        if not records:
            addresses = await self._addresses(name)
            if not addresses:
                raise PermanentRouteError(f"{name} has no MX and no address")
            return [Hop(name, address) for address in addresses]
        hops: list[Hop] = []
        trouble: RouteError | None = None
        for host in self._by_preference(records):
            try:
                hops += [Hop(host, address) for address in await self._addresses(host)]
            except TemporaryRouteError as exc:
                trouble = exc
        if not hops:
            raise trouble or TemporaryRouteError(f"no MX host of {name} has an address")
        return hops

    def _by_preference(self, records: Sequence[tuple[int, str]]) -> list[str]:
        """MX hosts by preference, equal preferences shuffled, each host once."""
        groups: dict[int, list[str]] = {}
        for preference, host in records:
            groups.setdefault(preference, []).append(host)
        ordered: list[str] = []
        for preference in sorted(groups):
            group = groups[preference]
            self.rng.shuffle(group)
            ordered += [h for h in group if h not in ordered]
        return ordered

    async def static_hops(self, targets: Sequence[str]) -> list[Hop]:
        """Hops for ``host:port`` targets (a host name is looked up, an address is not)."""
        hops: list[Hop] = []
        for target in targets:
            host, port = parse_host_port(target)
            if _is_address(host):
                hops.append(Hop(host, host, port))
            else:
                hops += [Hop(host, a, port) for a in await self._addresses(host)]
        if not hops:
            raise TemporaryRouteError("no address for the static route")
        return hops

    async def _addresses(self, host: str) -> list[str]:
        """AAAA then A addresses of *host*; a temporary error only if both lookups fail."""
        found: list[str] = []
        failures = 0
        for lookup, kind in ((self.resolver.aaaa, "AAAA"), (self.resolver.a, "A")):
            try:
                found += await self._lookup(lookup(host), f"{kind} {host}")
            except TemporaryRouteError:
                failures += 1
        if failures == 2 or (failures and not found):
            raise TemporaryRouteError(f"address lookup of {host} failed")
        return found

    async def _lookup(self, lookup: Deferred[Any], what: str) -> Any:
        lookup.addTimeout(self.timeout, self.reactor)
        try:
            return await lookup
        except DNSTemporaryError as exc:
            raise TemporaryRouteError(f"DNS lookup {what} failed") from exc
        except TimeoutError as exc:
            raise TemporaryRouteError(f"DNS lookup {what} timed out") from exc
