"""DMARC (RFC 7489): policy discovery, identifier alignment and the result.

The organizational domain is the registrable domain under the Public Suffix List
bundled with the C{publicsuffixlist} package (its ICANN and private sections; nothing
is fetched at run time).  A domain that is itself a public suffix is its own
organizational domain.

C{pct} is parsed but not applied: the result reports the published policy (C{p}, or
C{sp} for a subdomain whose record was found at the organizational domain), and what to
do with a failing message is the caller's decision.  DMARCbis drops C{pct} too.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from a3mail.smtp.dns import DNSResolver, DNSTemporaryError, normalize_name
from a3mail.smtp.msgfields import tag_list

__all__ = [
    "DMARCRecord",
    "DMARCRecordError",
    "PolicyDiscovery",
    "aligned",
    "discover_policy",
    "dmarc_result",
    "load_suffix_list",
    "organizational_domain",
    "parse_dmarc_record",
]

POLICIES = ("none", "quarantine", "reject")


class DMARCRecordError(ValueError):
    """A DMARC record without a usable policy."""


@attrs.frozen
class DMARCRecord:
    """The tags of a DMARC record that evaluation uses."""

    policy: str
    subdomain_policy: str | None = None
    dkim_alignment: str = "r"
    spf_alignment: str = "r"
    percent: int = 100


def is_dmarc_record(text: bytes) -> bool:
    """Whether a TXT record starts with the tag C{v=DMARC1} (RFC 7489 6.6.3)."""
    first, _, _ = text.partition(b";")
    name, equals, value = first.partition(b"=")
    return bool(equals) and name.strip(b" \t") == b"v" and value.strip(b" \t") == b"DMARC1"


def parse_dmarc_record(text: bytes) -> DMARCRecord:
    """
    Parse a DMARC record; raise L{DMARCRecordError} when it has no usable policy.

    Invalid optional tags fall back to their defaults.  An invalid or missing C{p} (or an
    invalid C{sp}) is read as C{p=none} when a reporting address (C{rua}) is given, and
    is an error otherwise (RFC 7489 6.6.3 step 6).
    """
    if not is_dmarc_record(text):
        raise DMARCRecordError("not a DMARC1 record")
    tags = {name: value.decode("ascii", "replace") for name, value in tag_list(text).items()}
    policy = tags.get("p", "").lower()
    subdomain_policy = tags["sp"].lower() if "sp" in tags else None
    if policy not in POLICIES or (
        subdomain_policy is not None and subdomain_policy not in POLICIES
    ):
        if ":" not in tags.get("rua", ""):
            raise DMARCRecordError("no valid p= tag")
        policy, subdomain_policy = "none", None
    try:
        percent = int(tags.get("pct", "100"))
    except ValueError:
        percent = 100
    return DMARCRecord(
        policy=policy,
        subdomain_policy=subdomain_policy,
        dkim_alignment=_alignment(tags.get("adkim")),
        spf_alignment=_alignment(tags.get("aspf")),
        percent=percent if 0 <= percent <= 100 else 100,
    )


def _alignment(value: str | None) -> str:
    return "s" if value is not None and value.lower() == "s" else "r"


@functools.cache
def _suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def load_suffix_list() -> None:
    """Load the Public Suffix List now (about 0.3 s) rather than on the first message."""
    _suffix_list()


def organizational_domain(domain: str) -> str:
    """The registrable domain of C{domain} (e.g. C{example.co.uk} for C{a.example.co.uk})."""
    name = normalize_name(domain) or domain.lower()
    registrable = _suffix_list().privatesuffix(name)
    return registrable if registrable else name


def aligned(identifier: str, author_domain: str, mode: str) -> bool:
    """Whether an authenticated domain aligns with the From domain: C{s}trict or C{r}elaxed."""
    left = normalize_name(identifier)
    right = normalize_name(author_domain)
    if left is None or right is None:
        return False
    if mode == "s":
        return left == right
    return organizational_domain(left) == organizational_domain(right)


@attrs.frozen
class PolicyDiscovery:
    """
    What policy discovery found for a From domain.

    @ivar result: C{found}, C{none} (no single DMARC record), C{permerror} (a record
        without usable policy) or C{temperror} (a DNS failure).
    @ivar record: the record when found.
    @ivar policy: the applicable policy when found: C{p}, or C{sp} (if given) when the
        record is the organizational domain's and the From domain is below it.
    """

    result: str
    record: DMARCRecord | None = None
    policy: str | None = None


def discover_policy(resolver: DNSResolver, author_domain: str) -> Deferred[PolicyDiscovery]:
    """Look up the DMARC record of C{author_domain}, then of its organizational domain."""
    return Deferred.fromCoroutine(_discover(resolver, author_domain))


async def _discover(resolver: DNSResolver, author_domain: str) -> PolicyDiscovery:
    organization = organizational_domain(author_domain)
    candidates = [author_domain] if organization == author_domain else [author_domain, organization]
    for domain in candidates:
        try:
            records = [r for r in await resolver.txt("_dmarc." + domain) if is_dmarc_record(r)]
        except DNSTemporaryError:
            return PolicyDiscovery("temperror")
        if len(records) > 1:
            return PolicyDiscovery("none")
        if records:
            try:
                record = parse_dmarc_record(records[0])
            except DMARCRecordError:
                return PolicyDiscovery("permerror")
            policy = record.policy
            if domain != author_domain and record.subdomain_policy is not None:
                policy = record.subdomain_policy
            return PolicyDiscovery("found", record, policy)
    return PolicyDiscovery("none")


def dmarc_result(
    discovery: PolicyDiscovery,
    author_domain: str,
    *,
    spf_result: str,
    spf_domain: str,
    dkim_result: str,
    dkim_domains: tuple[str, ...],
) -> str:
    """
    The DMARC result: C{pass} when SPF passed for an aligned domain or a DKIM signature of
    an aligned domain passed; otherwise C{temperror} when SPF or DKIM had a temporary
    error (the missing answer might have passed), else C{fail}.  Without a record the
    result is discovery's (C{none}, C{permerror}, C{temperror}).
    """
    record = discovery.record
    if discovery.result != "found" or record is None:
        return discovery.result
    if spf_result == "pass" and aligned(spf_domain, author_domain, record.spf_alignment):
        return "pass"
    if any(aligned(domain, author_domain, record.dkim_alignment) for domain in dkim_domains):
        return "pass"
    if "temperror" in (spf_result, dkim_result):
        return "temperror"
    return "fail"
