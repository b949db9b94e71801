"""Inbound message authentication: SPF, DKIM and DMARC, as an Authentication-Results header.

L{InboundVerifier.verify} runs the three checks for one received message and answers an
L{AuthResults}, whose L{AuthResults.header} is the RFC 8601 field the SMTP server
prepends.  SPF (L{a3mail.smtp.spf}) and the DMARC record lookup run concurrently with
DKIM (L{a3mail.smtp.dkimcheck}: keys prefetched, dkimpy in a worker thread); all of it is
bounded by one timeout, after which whatever has not finished is a C{temperror}.
C{verify} never fails: any error becomes a C{temperror} or C{permerror} result.

DNS goes through a L{DNSResolver}: L{TwistedNamesResolver} in production,
L{StaticResolver} in tests and closed networks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from a3mail.logs import get_logger
from a3mail.smtp.dkimcheck import DKIMOutcome, check_dkim
from a3mail.smtp.dmarc import PolicyDiscovery, discover_policy, dmarc_result, load_suffix_list
from a3mail.smtp.dns import (
    NO_ANSWER,
    DNSResolver,
    DNSTemporaryError,
    StaticResolver,
    TwistedNamesResolver,
    normalize_name,
)
from a3mail.smtp.msgfields import author_domain, header_fields
from a3mail.smtp.spf import SPFOutcome, check_spf, split_mail_from

__all__ = [
    "NO_ANSWER",
    "AuthResults",
    "DNSResolver",
    "DNSTemporaryError",
    "InboundVerifier",
    "StaticResolver",
    "TwistedNamesResolver",
]

log = get_logger(__name__)

_T = TypeVar("_T")

SPF_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
DKIM_RESULTS = ("pass", "fail", "none", "temperror", "permerror")
DMARC_RESULTS = ("pass", "fail", "none", "temperror", "permerror")
DMARC_POLICIES = ("none", "quarantine", "reject")

#: The longest property value written into the header; longer values are cut.
MAX_VALUE_LENGTH = 255

# RFC 2045 token: printable US-ASCII except SPACE and tspecials.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+\Z")


def _optional_in(choices: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    return attrs.validators.optional(attrs.validators.in_(choices))


@attrs.frozen
class AuthResults:
    """
    The outcome of inbound authentication for one message.

    @ivar spf: C{pass fail softfail neutral none temperror permerror}.
    @ivar spf_domain: the domain checked: MAIL FROM's, or HELO's when MAIL FROM is null.
    @ivar dkim: C{pass} if any signature verified, else C{fail none temperror permerror}.
    @ivar dkim_domains: the d= domains of the signatures that verified.
    @ivar dmarc: C{pass fail none temperror permerror}.
    @ivar dmarc_policy: the applicable published policy (C{p}, or C{sp} for a subdomain)
        when a DMARC record was found: C{none quarantine reject}.
    @ivar from_domain: the RFC5322.From domain, L{None} when there is no single one.
    @ivar spf_scope: C{mailfrom} or C{helo}: which identity C{spf_domain} is.
    """

    spf: str = attrs.field(validator=attrs.validators.in_(SPF_RESULTS))
    spf_domain: str
    dkim: str = attrs.field(validator=attrs.validators.in_(DKIM_RESULTS))
    dkim_domains: tuple[str, ...]
    dmarc: str = attrs.field(validator=attrs.validators.in_(DMARC_RESULTS))
    dmarc_policy: str | None = attrs.field(validator=_optional_in(DMARC_POLICIES))
    from_domain: str | None
    spf_scope: str = attrs.field(
        default="mailfrom", validator=attrs.validators.in_(("mailfrom", "helo"))
    )

    def header(self, authserv_id: str) -> bytes:
        """
        The Authentication-Results field (RFC 8601), CRLF-terminated, one result per line.

        Values taken from the SMTP session or the message are cleaned first: control
        characters (CR and LF included) are removed, non-ASCII becomes C{?}, values are
        cut at L{MAX_VALUE_LENGTH} characters and quoted unless they are a token.
        """
        spf = f"spf={self.spf}"
        if self.spf_domain:
            spf += f" smtp.{self.spf_scope}={_value(self.spf_domain)}"
        results = [spf]
        if self.dkim == "pass" and self.dkim_domains:
            results.extend(f"dkim=pass header.d={_value(d)}" for d in self.dkim_domains)
        else:
            results.append(f"dkim={self.dkim}")
        dmarc = f"dmarc={self.dmarc}"
        if self.dmarc == "fail" and self.dmarc_policy is not None:
            dmarc += f" (p={self.dmarc_policy})"
        if self.from_domain:
            dmarc += f" header.from={_value(self.from_domain)}"
        results.append(dmarc)
        text = f"Authentication-Results: {_value(authserv_id)};\r\n\t" + ";\r\n\t".join(results)
        return text.encode("ascii") + b"\r\n"


def _value(raw: str) -> str:
    """A header-safe property value: a token, or a quoted string (RFC 8601 / RFC 2045)."""
    text = raw if raw.isascii() else normalize_name(raw) or raw  # IDN: A-labels if possible
    text = "".join(ch if ch.isascii() else "?" for ch in text if ch.isprintable())
    text = text.strip()[:MAX_VALUE_LENGTH]
    if _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InboundVerifier:
    """
    Runs SPF, DKIM and DMARC for received messages.

    @param resolver: the DNS to ask.
    @param reactor: the reactor (time; its thread pool runs dkimpy).
    @param authserv_id: this server's name in the header (RFC 8601 authserv-id).
    @param timeout: the most time one L{verify} takes, in seconds.
    """

    def __init__(
        self, resolver: DNSResolver, reactor: Any, authserv_id: str, timeout: float = 10.0
    ) -> None:
        self.resolver = resolver
        self.reactor = reactor
        self.authserv_id = authserv_id
        self.timeout = timeout
        load_suffix_list()

    def verify(
        self, *, client_ip: str, helo: str, mail_from: str, message: bytes
    ) -> Deferred[AuthResults]:
        """Authenticate one message; the Deferred always fires with an L{AuthResults}."""
        try:
            scope, _, domain = split_mail_from(mail_from, helo)
            spf_domain = normalize_name(domain) or domain.strip().lower()
        except Exception:
            scope, spf_domain = "mailfrom", ""
        fallback = AuthResults(
            spf="temperror",
            spf_domain=spf_domain,
            dkim="temperror",
            dkim_domains=(),
            dmarc="temperror",
            dmarc_policy=None,
            from_domain=None,
            spf_scope=scope,
        )
        try:
            verifying = Deferred.fromCoroutine(
                self._verify(client_ip, helo, mail_from, message, fallback)
            )
        except Exception:
            log.failure("inbound authentication failed")
            return succeed(fallback)
        return verifying.addErrback(self._failed, fallback)

    def _failed(self, reason: Failure, fallback: AuthResults) -> AuthResults:
        log.failure("inbound authentication failed", reason)
        return fallback

    async def _verify(
        self, client_ip: str, helo: str, mail_from: str, message: bytes, fallback: AuthResults
    ) -> AuthResults:
        deadline = self.reactor.seconds() + self.timeout
        fields = header_fields(message)
        author = author_domain(fields)
        spf_running = self._bounded(
            check_spf(self.resolver, client_ip=client_ip, helo=helo, mail_from=mail_from),
            deadline,
            SPFOutcome("temperror", fallback.spf_domain, fallback.spf_scope),
        )
        dkim_running = self._bounded(
            check_dkim(self.resolver, message, fields, self._run_in_thread),
            deadline,
            DKIMOutcome("temperror"),
        )
        discovery_running = (
            self._bounded(
                discover_policy(self.resolver, author.domain),
                deadline,
                PolicyDiscovery("temperror"),
            )
            if author.domain is not None
            else succeed(PolicyDiscovery(author.problem or "none"))
        )
        spf = await spf_running
        dkim = await dkim_running
        discovery = await discovery_running
        if author.domain is None:
            dmarc = author.problem or "none"
        else:
            dmarc = dmarc_result(
                discovery,
                author.domain,
                spf_result=spf.result,
                spf_domain=spf.domain,
                dkim_result=dkim.result,
                dkim_domains=dkim.passing_domains,
            )
        return AuthResults(
            spf=spf.result,
            spf_domain=spf.domain,
            dkim=dkim.result,
            dkim_domains=dkim.passing_domains,
            dmarc=dmarc,
            dmarc_policy=discovery.policy,
            from_domain=author.domain,
            spf_scope=spf.scope,
        )

    def _bounded(self, running: Deferred[_T], deadline: float, fallback: _T) -> Deferred[_T]:
        """C{running}, or C{fallback} if it fails or is not done by C{deadline}."""

        def failed(reason: Failure) -> _T:
            log.failure("inbound authentication step failed", reason)
            return fallback

        running.addTimeout(
            max(0.0, deadline - self.reactor.seconds()),
            self.reactor,
            onTimeoutCancel=lambda result, timeout: fallback,
        )
        return running.addErrback(failed)

    def _run_in_thread(self, function: Callable[..., _T], *args: Any) -> Deferred[_T]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), function, *args)
