"""SPF (RFC 7208): check_host() over an asynchronous L{DNSResolver}.

L{check_spf} checks the MAIL FROM identity of a message, or the HELO identity when MAIL
FROM is null, and answers one of C{pass fail softfail neutral none temperror permerror}.

Supported: the mechanisms C{all include a mx ptr ip4 ip6 exists} with their qualifiers
and dual CIDR lengths, the modifiers C{redirect} and C{exp} (whose explanation is
syntax-checked but never fetched), unknown modifiers (ignored), and every macro letter.

Limits (RFC 7208 4.6.4): at most 10 terms that query DNS (C{include a mx ptr exists
redirect}), at most 10 names per C{mx}/C{ptr} evaluation, at most 2 void lookups (no
data or NXDOMAIN); past any of them the result is C{permerror}.  A DNS failure is
C{temperror}.  A whole record is C{permerror} as soon as any term has a syntax error,
even one that evaluation would never reach.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import attrs
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.python.failure import Failure

from a3mail.logs import get_logger
from a3mail.smtp.dns import DNSResolver, DNSTemporaryError, normalize_name, reverse_pointer_name
from a3mail.smtp.spf_macros import (
    TOPLABEL,
    MacroSyntaxError,
    check_domain_spec,
    check_macro_string,
    expand,
    macro_letters,
    truncate_domain,
)

__all__ = [
    "FAIL",
    "NEUTRAL",
    "NONE",
    "PASS",
    "PERMERROR",
    "SOFTFAIL",
    "TEMPERROR",
    "SPFOutcome",
    "SPFRecord",
    "check_spf",
    "parse_record",
]

log = get_logger(__name__)

_T = TypeVar("_T")

PASS = "pass"  # noqa: S105 - a result name, not a password
FAIL = "fail"
SOFTFAIL = "softfail"
NEUTRAL = "neutral"
NONE = "none"
TEMPERROR = "temperror"
PERMERROR = "permerror"

#: Terms that query DNS, per check (include, a, mx, ptr, exists, redirect).
MAX_DNS_TERMS = 10
#: Lookups answering no data or NXDOMAIN, per check.
MAX_VOID_LOOKUPS = 2
#: Names looked up per mx or ptr evaluation.
MAX_NAMES_PER_MECHANISM = 10

_QUALIFIERS = {"+": PASS, "-": FAIL, "~": SOFTFAIL, "?": NEUTRAL}
_MECHANISM = re.compile(r"(?P<qualifier>[-+~?]?)(?P<name>[A-Za-z][A-Za-z0-9_.-]*)(?P<rest>.*)\Z")
_MODIFIER = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_.-]*)=(?P<value>.*)\Z")
_DUAL_CIDR = re.compile(r"(?:/(?P<ip4>[0-9]+))?(?://(?P<ip6>[0-9]+))?\Z")


class SPFPermanentError(Exception):
    """The check ends in permerror (syntax error, limits, missing include target)."""


class SPFTemporaryError(Exception):
    """The check ends in temperror (a DNS lookup failed)."""


# -- records ------------------------------------------------------------------------------


@attrs.frozen
class Directive:
    """One mechanism of a record with its qualifier result and arguments."""

    result: str
    mechanism: str
    domain_spec: str | None = None
    ip4_prefix: int = 32
    ip6_prefix: int = 128
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None


@attrs.frozen
class SPFRecord:
    """A parsed C{v=spf1} record."""

    directives: tuple[Directive, ...]
    redirect: str | None = None
    explanation: str | None = None


def is_spf_record(text: bytes) -> bool:
    """Whether a TXT record is an SPF version 1 record (C{v=spf1} then space or end)."""
    lowered = text[:7].lower()
    return lowered == b"v=spf1" or lowered == b"v=spf1 "


def parse_record(text: str) -> SPFRecord:
    """Parse a whole SPF record; raise L{SPFPermanentError} at the first syntax error."""
    terms = text.split(" ")
    if terms[0].lower() != "v=spf1":
        raise SPFPermanentError("not an SPF version 1 record")
    directives: list[Directive] = []
    redirect: str | None = None
    explanation: str | None = None
    try:
        for term in terms[1:]:
            if not term:
                continue
            modifier = _MODIFIER.match(term)
            if modifier is not None:
                name, value = modifier.group("name").lower(), modifier.group("value")
                if name == "redirect":
                    if redirect is not None:
                        raise SPFPermanentError("more than one redirect")
                    check_domain_spec(value)
                    redirect = value
                elif name == "exp":
                    if explanation is not None:
                        raise SPFPermanentError("more than one exp")
                    check_domain_spec(value)
                    explanation = value
                else:
                    check_macro_string(value)
                continue
            directives.append(_parse_mechanism(term))
    except MacroSyntaxError as exc:
        raise SPFPermanentError(str(exc)) from None
    return SPFRecord(tuple(directives), redirect, explanation)


def _parse_mechanism(term: str) -> Directive:
    match = _MECHANISM.match(term)
    if match is None:
        raise SPFPermanentError(f"bad term {term!r}")
    result = _QUALIFIERS[match.group("qualifier") or "+"]
    name, rest = match.group("name").lower(), match.group("rest")
    if name == "all":
        if rest:
            raise SPFPermanentError("all takes no argument")
        return Directive(result, name)
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            raise SPFPermanentError(f"{name} needs a domain")
        check_domain_spec(rest[1:])
        return Directive(result, name, rest[1:])
    if name in ("a", "mx", "ptr"):
        ip4_prefix, ip6_prefix = 32, 128
        if name != "ptr":
            rest, ip4_prefix, ip6_prefix = _split_dual_cidr(rest)
        if not rest:
            return Directive(result, name, None, ip4_prefix, ip6_prefix)
        if not rest.startswith(":"):
            raise SPFPermanentError(f"bad {name} argument")
        check_domain_spec(rest[1:])
        return Directive(result, name, rest[1:], ip4_prefix, ip6_prefix)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SPFPermanentError(f"{name} needs a network")
        return Directive(result, name, network=_parse_network(name, rest[1:]))
    raise SPFPermanentError(f"unknown mechanism {name!r}")


def _prefix(digits: str | None, limit: int) -> int | None:
    if digits is None:
        return None
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) > 3 or int(digits) > limit:
        raise SPFPermanentError(f"bad CIDR length /{digits}")
    return int(digits)


def _split_dual_cidr(rest: str) -> tuple[str, int, int]:
    match = _DUAL_CIDR.search(rest)
    assert match is not None  # the pattern matches the empty string at the end
    ip4 = _prefix(match.group("ip4"), 32)
    ip6 = _prefix(match.group("ip6"), 128)
    return rest[: match.start()], 32 if ip4 is None else ip4, 128 if ip6 is None else ip6


def _parse_network(name: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address, slash, digits = text.partition("/")
    try:
        if name == "ip4":
            prefix = _prefix(digits if slash else None, 32)
            return ipaddress.IPv4Network(
                (ipaddress.IPv4Address(address), 32 if prefix is None else prefix), strict=False
            )
        prefix = _prefix(digits if slash else None, 128)
        return ipaddress.IPv6Network(
            (ipaddress.IPv6Address(address), 128 if prefix is None else prefix), strict=False
        )
    except ValueError:
        raise SPFPermanentError(f"bad {name} network {text!r}") from None


# -- evaluation ---------------------------------------------------------------------------


@attrs.frozen
class SPFOutcome:
    """
    The result of an SPF check.

    @ivar result: C{pass fail softfail neutral none temperror permerror}.
    @ivar domain: the domain checked (MAIL FROM's, or HELO's when MAIL FROM is null).
    @ivar scope: C{mailfrom} or C{helo}: which identity was checked.
    """

    result: str
    domain: str
    scope: str


def check_spf(
    resolver: DNSResolver, *, client_ip: str, helo: str, mail_from: str
) -> Deferred[SPFOutcome]:
    """Check the MAIL FROM identity (or HELO's when MAIL FROM is null) of a client."""
    return Deferred.fromCoroutine(_check_spf(resolver, client_ip, helo, mail_from))


def split_mail_from(mail_from: str, helo: str) -> tuple[str, str, str]:
    """
    The SPF identity of an SMTP transaction: C{(scope, local part, domain)}.

    A null MAIL FROM (empty or C{<>}) gives the HELO identity C{postmaster@helo}; a
    missing local part is C{postmaster} (RFC 7208 4.3).
    """
    path = mail_from.strip()
    if path.startswith("<") and path.endswith(">"):
        path = path[1:-1].strip()
    if path.startswith("@") and ":" in path:  # a source route
        path = path.split(":", 1)[1]
    if not path:
        return "helo", "postmaster", helo.strip()
    local, at, domain = path.rpartition("@")
    if not at:
        return "mailfrom", "postmaster", path
    return "mailfrom", local or "postmaster", domain


async def _check_spf(
    resolver: DNSResolver, client_ip: str, helo: str, mail_from: str
) -> SPFOutcome:
    scope, local, domain = split_mail_from(mail_from, helo)
    reported = normalize_name(domain) or domain.strip().lower()
    try:
        address = ipaddress.ip_address(client_ip.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return SPFOutcome(NONE, reported, scope)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    check = _HostCheck(resolver, address, local, reported, helo)
    try:
        result = await check.check_host(domain)
    except SPFPermanentError as exc:
        log.debug("SPF permerror for {domain}: {why}", domain=reported, why=str(exc))
        result = PERMERROR
    except SPFTemporaryError as exc:
        log.debug("SPF temperror for {domain}: {why}", domain=reported, why=str(exc))
        result = TEMPERROR
    return SPFOutcome(result, reported, scope)


class _HostCheck:
    """One SPF check: the client, the sender and the limits' counters, over nested check_host()."""

    def __init__(
        self,
        resolver: DNSResolver,
        address: ipaddress.IPv4Address | ipaddress.IPv6Address,
        local: str,
        sender_domain: str,
        helo: str,
    ) -> None:
        self.resolver = resolver
        self.address = address
        self.local = local
        self.sender_domain = sender_domain
        self.helo = helo
        self.dns_terms = 0
        self.void_lookups = 0
        self._validated_names: list[str] | None = None

    async def check_host(self, domain: str) -> str:
        """RFC 7208 check_host() for C{domain}: a result, or an SPF*Error for the errors."""
        name = normalize_name(domain)
        if name is None or not TOPLABEL.match(name.rpartition(".")[2]) or "." not in name:
            return NONE  # malformed, single-label, or an address literal
        records = [r for r in await self._query(self.resolver.txt, name) if is_spf_record(r)]
        if not records:
            return NONE
        if len(records) > 1:
            raise SPFPermanentError(f"{name} has several SPF records")
        try:
            record = parse_record(records[0].decode("ascii"))
        except UnicodeDecodeError:
            raise SPFPermanentError(f"{name}'s SPF record is not ASCII") from None
        for directive in record.directives:
            if await self._matches(directive, name):
                return directive.result
        if record.redirect is None:
            return NEUTRAL
        self._count_dns_term()
        result = await self.check_host(await self._target(record.redirect, name))
        if result == NONE:
            raise SPFPermanentError("redirect to a domain without SPF record")
        return result

    # -- mechanisms --

    async def _matches(self, directive: Directive, domain: str) -> bool:
        mechanism = directive.mechanism
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            assert directive.network is not None
            return (
                self.address.version == directive.network.version
                and self.address in directive.network
            )
        self._count_dns_term()
        target = await self._target(directive.domain_spec, domain)
        if mechanism == "include":
            result = await self.check_host(target)
            if result == NONE:
                raise SPFPermanentError(f"include of {target} without SPF record")
            return result == PASS
        if mechanism == "exists":
            return bool(self._void_counted(await self._query(self.resolver.a, target)))
        if mechanism == "a":
            addresses = self._void_counted(await self._addresses(target))
            return self._in_any(addresses, directive)
        if mechanism == "mx":
            return await self._mx_matches(target, directive)
        return any(
            name == target or name.endswith("." + target) for name in await self._ptr_names()
        )

    async def _mx_matches(self, target: str, directive: Directive) -> bool:
        exchanges = self._void_counted(await self._query(self.resolver.mx, target))
        if len(exchanges) > MAX_NAMES_PER_MECHANISM:
            raise SPFPermanentError(f"{target} has more than {MAX_NAMES_PER_MECHANISM} MX")
        hosts = [host for _, host in exchanges if host]
        lookups = [Deferred.fromCoroutine(self._addresses(host)) for host in hosts]
        return await _first_match(lookups, lambda found: self._in_any(found, directive))

    def _in_any(self, addresses: Sequence[str], directive: Directive) -> bool:
        prefix = directive.ip4_prefix if self.address.version == 4 else directive.ip6_prefix
        for text in addresses:
            try:
                network = ipaddress.ip_network((text, prefix), strict=False)
            except ValueError:
                continue
            if network.version == self.address.version and self.address in network:
                return True
        return False

    async def _ptr_names(self) -> list[str]:
        """Validated host names of the client (RFC 7208 5.5), computed once per check."""
        if self._validated_names is not None:
            return self._validated_names
        self._validated_names = []
        try:
            names = await self._query(self.resolver.ptr, reverse_pointer_name(str(self.address)))
        except SPFTemporaryError:
            return self._validated_names  # a PTR lookup error is "no match"
        self._void_counted(names)
        candidates = [n for n in names if n][:MAX_NAMES_PER_MECHANISM]
        lookups = await _gather([self._addresses(name) for name in candidates])
        for name, addresses in zip(candidates, lookups):
            if isinstance(addresses, BaseException):
                continue  # an address lookup error skips that name
            if str(self.address) in {_canonical_ip(a) for a in addresses}:
                self._validated_names.append(name)
        return self._validated_names

    # -- DNS --

    def _count_dns_term(self) -> None:
        self.dns_terms += 1
        if self.dns_terms > MAX_DNS_TERMS:
            raise SPFPermanentError(f"more than {MAX_DNS_TERMS} DNS-querying terms")

    def _void_counted(self, answers: list[_T]) -> list[_T]:
        if not answers:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise SPFPermanentError(f"more than {MAX_VOID_LOOKUPS} void lookups")
        return answers

    async def _query(self, method: Callable[[str], Deferred[list[_T]]], name: str) -> list[_T]:
        try:
            return await method(name)
        except DNSTemporaryError as exc:
            raise SPFTemporaryError(str(exc)) from None

    async def _addresses(self, name: str) -> list[str]:
        method = self.resolver.a if self.address.version == 4 else self.resolver.aaaa
        return await self._query(method, name)

    async def _target(self, domain_spec: str | None, domain: str) -> str:
        """The name a term queries: its domain-spec expanded, or the current domain."""
        if domain_spec is None:
            return domain
        values = self._macro_values(domain)
        if "p" in macro_letters(domain_spec):
            values["p"] = _pick_validated(await self._ptr_names(), domain)
        expanded = truncate_domain(expand(domain_spec, values).rstrip("."))
        return normalize_name(expanded) or expanded.lower()

    def _macro_values(self, domain: str) -> dict[str, str]:
        if self.address.version == 4:
            dotted, version = str(self.address), "in-addr"
        else:
            dotted, version = ".".join(self.address.exploded.replace(":", "")), "ip6"
        return {
            "s": f"{self.local}@{self.sender_domain}",
            "l": self.local,
            "o": self.sender_domain,
            "d": domain,
            "i": dotted,
            "h": self.helo,
            "v": version,
            "p": "unknown",
            "c": str(self.address),
            "r": "unknown",
            "t": str(int(time.time())),
        }


def _pick_validated(names: list[str], domain: str) -> str:
    for name in names:
        if name == domain or name.endswith("." + domain):
            return name
    return names[0] if names else "unknown"


def _canonical_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _first_match(lookups: Sequence[Deferred[_T]], matches: Callable[[_T], bool]) -> Deferred[bool]:
    """
    True as soon as one lookup's answer C{matches} (the others are then cancelled); False
    when all answered without a match; the first error when none matched but one failed.
    """

    def cancel_lookups(_: Deferred[bool]) -> None:
        for lookup in lookups:
            lookup.cancel()

    outcome: Deferred[bool] = Deferred(cancel_lookups)
    pending = len(lookups)
    errors: list[Failure] = []

    def finished(result: _T | Failure) -> None:
        nonlocal pending
        pending -= 1
        if outcome.called:
            return
        if isinstance(result, Failure):
            errors.append(result)
        elif matches(result):
            outcome.callback(True)
            cancel_lookups(outcome)
            return
        if pending == 0 and errors:
            outcome.errback(errors[0])
        elif pending == 0:
            outcome.callback(False)

    if not lookups:
        return succeed(False)
    for lookup in lookups:
        lookup.addBoth(finished)
    return outcome


async def _gather(lookups: Sequence[Coroutine[Any, Any, _T]]) -> list[_T | BaseException]:
    """Run lookups concurrently; each outcome is its value or its exception."""
    if not lookups:
        return []
    deferreds = [Deferred.fromCoroutine(lookup) for lookup in lookups]
    outcomes = await DeferredList(deferreds, consumeErrors=True)
    results: list[_T | BaseException] = []
    for _, value in outcomes:
        if isinstance(value, Failure):
            if value.check(CancelledError):
                value.raiseException()  # the check was abandoned: stop here
            results.append(value.value if value.value is not None else Exception("lookup failed"))
        else:
            results.append(value)
    return results
