"""InboundVerifier: DKIM, DMARC, the Authentication-Results header, timeouts, hostile input."""

from __future__ import annotations

import re

import dkim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.trial import unittest

from a3mail.smtp.authres import (
    NO_ANSWER,
    AuthResults,
    DNSTemporaryError,
    InboundVerifier,
    StaticResolver,
)
from tests.smtp.authres_support import (
    MESSAGE,
    SMALL_RSA_PRIVATE,
    SMALL_RSA_RECORD,
    InlineReactor,
    ed25519_record,
    rsa_record,
    sign_ed25519,
    sign_rsa,
)

SPF_PASS = {("TXT", "example.com"): ["v=spf1 ip4:192.0.2.0/24 -all"]}
DMARC_REJECT = {("TXT", "_dmarc.example.com"): ["v=DMARC1; p=reject; rua=mailto:d@example.com"]}
KEYS = {
    ("TXT", "sel._domainkey.example.com"): [rsa_record()],
    ("TXT", "ed._domainkey.example.com"): [ed25519_record()],
}


def verify(
    zone,
    message=MESSAGE,
    *,
    client_ip="192.0.2.10",
    helo="mx.example.com",
    mail_from="bounce@example.com",
    timeout=10.0,
):
    """Run verify() synchronously (inline "threads", a Clock) and return its result."""
    clock = InlineReactor()
    resolver = StaticResolver(zone)
    result = InboundVerifier(resolver, clock, "mx.a3mail.test", timeout=timeout).verify(
        client_ip=client_ip, helo=helo, mail_from=mail_from, message=message
    )
    outcome = []
    result.addBoth(outcome.append)
    assert outcome, "verify() did not complete"
    assert not clock.getDelayedCalls(), "verify() left a timer behind"
    return outcome[0], resolver


class DKIMTests(unittest.TestCase):
    def test_rsa_signature_passes(self):
        results, resolver = verify(KEYS, sign_rsa(MESSAGE))
        self.assertEqual((results.dkim, results.dkim_domains), ("pass", ("example.com",)))
        self.assertIn(("TXT", "sel._domainkey.example.com"), resolver.queries)

    def test_ed25519_signature_passes(self):
        results, _ = verify(KEYS, sign_ed25519(MESSAGE))
        self.assertEqual((results.dkim, results.dkim_domains), ("pass", ("example.com",)))

    def test_tampered_body_fails(self):
        signed = sign_rsa(MESSAGE).replace(b"this is a test", b"this is a scam")
        self.assertEqual(verify(KEYS, signed)[0].dkim, "fail")
        signed = sign_ed25519(MESSAGE).replace(b"this is a test", b"this is a scam")
        self.assertEqual(verify(KEYS, signed)[0].dkim, "fail")

    def test_tampered_signed_header_fails(self):
        signed = sign_rsa(MESSAGE).replace(b"Subject: hello", b"Subject: HELLO")
        results, _ = verify(KEYS, signed)
        self.assertEqual((results.dkim, results.dkim_domains), ("fail", ()))

    def test_missing_key_is_permerror(self):
        # RFC 6376 6.1.2: no key record for the signature is a permanent failure.
        results, _ = verify({}, sign_rsa(MESSAGE))
        self.assertEqual(results.dkim, "permerror")

    def test_revoked_or_garbage_key_is_permerror(self):
        for record in [b"v=DKIM1; k=rsa; p=", b"v=DKIM1; p=!!!", b"v=DKIM2; p=abc"]:
            zone = {("TXT", "sel._domainkey.example.com"): [record]}
            self.assertEqual(verify(zone, sign_rsa(MESSAGE))[0].dkim, "permerror", record)

    def test_key_under_1024_bits_is_permerror(self):
        signature = dkim.sign(
            MESSAGE, b"small", b"example.com", SMALL_RSA_PRIVATE, include_headers=[b"from"]
        )
        zone = {("TXT", "small._domainkey.example.com"): [SMALL_RSA_RECORD]}
        self.assertEqual(verify(zone, signature + MESSAGE)[0].dkim, "permerror")

    def test_expired_signature_is_permerror(self):
        signed = sign_rsa(MESSAGE).replace(b"DKIM-Signature: v=1;", b"DKIM-Signature: v=1; x=1;")
        self.assertIn(b"x=1;", signed)
        self.assertEqual(verify(KEYS, signed)[0].dkim, "permerror")

    def test_key_lookup_failure_is_temperror(self):
        zone = {("TXT", "sel._domainkey.example.com"): DNSTemporaryError("timeout")}
        self.assertEqual(verify(zone, sign_rsa(MESSAGE))[0].dkim, "temperror")

    def test_malformed_signatures_are_permerror(self):
        for signature in [
            b"DKIM-Signature: garbage\r\n",
            b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel\r\n",
            b"DKIM-Signature: v=1; d=example.com; s=sel; b=; bh=; h=from; a=x\r\n",
            b"DKIM-Signature: d=\xff\xfe; s=sel\r\n",
        ]:
            results, _ = verify(KEYS, signature + MESSAGE)
            self.assertEqual(results.dkim, "permerror", signature)

    def test_no_signature_is_none(self):
        results, _ = verify(KEYS)
        self.assertEqual((results.dkim, results.dkim_domains), ("none", ()))

    def test_any_valid_signature_passes_and_only_valid_domains_are_listed(self):
        message = sign_rsa(MESSAGE, domain=b"example.com")
        message = sign_rsa(message, domain=b"broken.example", selector=b"sel")
        zone = dict(KEYS)
        zone[("TXT", "sel._domainkey.broken.example")] = [b"v=DKIM1; p="]
        results, _ = verify(zone, message)
        self.assertEqual((results.dkim, results.dkim_domains), ("pass", ("example.com",)))

    def test_only_the_first_five_signatures_are_looked_at(self):
        message = MESSAGE
        for i in range(7):
            message = sign_rsa(message, domain=f"d{i}.example".encode())
        _, resolver = verify({}, message)
        keys = [name for rtype, name in resolver.queries if "_domainkey" in name]
        self.assertEqual(len(keys), 5)


class RealThreadTests(unittest.TestCase):
    """dkimpy really runs in the reactor's thread pool."""

    async def test_verify_with_the_running_reactor(self):
        resolver = StaticResolver({**KEYS, **SPF_PASS, **DMARC_REJECT})
        verifier = InboundVerifier(resolver, reactor, "mx.a3mail.test")
        results = await verifier.verify(
            client_ip="192.0.2.10", helo="h", mail_from="a@example.com", message=sign_rsa(MESSAGE)
        )
        self.assertEqual((results.spf, results.dkim, results.dmarc), ("pass", "pass", "pass"))


class DMARCTests(unittest.TestCase):
    def test_aligned_through_spf(self):
        results, _ = verify({**SPF_PASS, **DMARC_REJECT}, mail_from="bounce@example.com")
        self.assertEqual(results.dmarc, "pass")
        self.assertEqual((results.dmarc_policy, results.from_domain), ("reject", "example.com"))

    def test_relaxed_spf_alignment_accepts_a_subdomain(self):
        zone = {**DMARC_REJECT, ("TXT", "bounces.example.com"): ["v=spf1 ip4:192.0.2.10 -all"]}
        self.assertEqual(verify(zone, mail_from="b@bounces.example.com")[0].dmarc, "pass")

    def test_strict_spf_alignment_refuses_a_subdomain(self):
        zone = {
            ("TXT", "_dmarc.example.com"): ["v=DMARC1; p=quarantine; aspf=s"],
            ("TXT", "bounces.example.com"): ["v=spf1 ip4:192.0.2.10 -all"],
        }
        results, _ = verify(zone, mail_from="b@bounces.example.com")
        self.assertEqual((results.spf, results.dmarc), ("pass", "fail"))
        self.assertEqual(results.dmarc_policy, "quarantine")

    def test_aligned_through_dkim(self):
        results, _ = verify(
            {**KEYS, **DMARC_REJECT}, sign_rsa(MESSAGE), mail_from="x@other.example"
        )
        self.assertEqual((results.spf, results.dkim, results.dmarc), ("none", "pass", "pass"))

    def test_strict_dkim_alignment(self):
        zone = {
            ("TXT", "sel._domainkey.mail.example.com"): [rsa_record()],
            ("TXT", "_dmarc.example.com"): ["v=DMARC1; p=reject; adkim=s"],
        }
        signed = sign_rsa(MESSAGE, domain=b"mail.example.com")
        results, _ = verify(zone, signed, mail_from="x@other.example")
        self.assertEqual((results.dkim, results.dmarc), ("pass", "fail"))
        zone[("TXT", "_dmarc.example.com")] = ["v=DMARC1; p=reject"]
        self.assertEqual(verify(zone, signed, mail_from="x@other.example")[0].dmarc, "pass")

    def test_unaligned_fails_and_surfaces_the_policy(self):
        zone = {
            ("TXT", "other.example"): ["v=spf1 ip4:192.0.2.10 -all"],
            ("TXT", "sel._domainkey.other.example"): [rsa_record()],
            **DMARC_REJECT,
        }
        signed = sign_rsa(MESSAGE, domain=b"other.example")
        results, _ = verify(zone, signed, mail_from="x@other.example")
        self.assertEqual((results.spf, results.dkim), ("pass", "pass"))
        self.assertEqual((results.dmarc, results.dmarc_policy), ("fail", "reject"))
        self.assertEqual(results.dkim_domains, ("other.example",))

    def test_organizational_domain_fallback_uses_sp(self):
        message = MESSAGE.replace(b"alice@example.com", b"alice@news.example.co.uk")
        zone = {("TXT", "_dmarc.example.co.uk"): ["v=DMARC1; p=reject; sp=quarantine"]}
        results, resolver = verify(zone, message, mail_from="x@other.example")
        self.assertEqual((results.dmarc, results.dmarc_policy), ("fail", "quarantine"))
        self.assertEqual(results.from_domain, "news.example.co.uk")
        dmarc_queries = [name for _, name in resolver.queries if name.startswith("_dmarc.")]
        self.assertEqual(dmarc_queries, ["_dmarc.news.example.co.uk", "_dmarc.example.co.uk"])

    def test_own_record_uses_p(self):
        zone = {("TXT", "_dmarc.example.com"): ["v=DMARC1; p=quarantine; sp=reject"]}
        results, _ = verify(zone, mail_from="x@other.example")
        self.assertEqual(results.dmarc_policy, "quarantine")

    def test_no_record_is_none(self):
        results, _ = verify(SPF_PASS)
        self.assertEqual((results.dmarc, results.dmarc_policy), ("none", None))
        self.assertEqual(results.from_domain, "example.com")

    def test_several_records_are_none(self):
        zone = {("TXT", "_dmarc.example.com"): ["v=DMARC1; p=reject", "v=DMARC1; p=none"]}
        self.assertEqual(verify(zone)[0].dmarc, "none")

    def test_record_without_policy_is_permerror_unless_it_has_rua(self):
        zone = {("TXT", "_dmarc.example.com"): ["v=DMARC1; p=bogus"]}
        self.assertEqual(verify(zone)[0].dmarc, "permerror")
        zone = {("TXT", "_dmarc.example.com"): ["v=DMARC1; rua=mailto:r@example.com"]}
        results, _ = verify(zone, mail_from="x@other.example")
        self.assertEqual((results.dmarc, results.dmarc_policy), ("fail", "none"))

    def test_several_from_fields_are_permerror(self):
        message = b"From: a@example.com\r\n" + MESSAGE
        results, resolver = verify({**SPF_PASS, **DMARC_REJECT}, message)
        self.assertEqual((results.dmarc, results.from_domain), ("permerror", None))
        self.assertFalse([q for q in resolver.queries if q[1].startswith("_dmarc.")])

    def test_from_with_two_domains_is_permerror(self):
        message = MESSAGE.replace(b"<alice@example.com>", b"<alice@example.com>, b@evil.example")
        self.assertEqual(verify({**SPF_PASS, **DMARC_REJECT}, message)[0].dmarc, "permerror")

    def test_no_from_is_none(self):
        message = MESSAGE.replace(b"From: Alice <alice@example.com>\r\n", b"")
        results, _ = verify({**SPF_PASS, **DMARC_REJECT}, message)
        self.assertEqual((results.dmarc, results.from_domain), ("none", None))

    def test_display_name_cannot_pick_the_domain(self):
        message = MESSAGE.replace(b"Alice <alice@example.com>", b'"a@example.com" <x@evil.example>')
        results, _ = verify({**SPF_PASS, **DMARC_REJECT}, message)
        self.assertEqual(results.from_domain, "evil.example")

    def test_dns_failure_is_temperror(self):
        zone = {**SPF_PASS, ("TXT", "_dmarc.example.com"): DNSTemporaryError("servfail")}
        results, _ = verify(zone, mail_from="x@other.example")
        self.assertEqual((results.dmarc, results.dmarc_policy), ("temperror", None))

    def test_spf_temperror_without_other_pass_is_temperror(self):
        zone = {**DMARC_REJECT, ("TXT", "example.com"): DNSTemporaryError("timeout")}
        results, _ = verify(zone)
        self.assertEqual(
            (results.spf, results.dmarc, results.dmarc_policy), ("temperror", "temperror", "reject")
        )


class TimeoutTests(unittest.TestCase):
    def test_unfinished_checks_become_temperror_at_the_deadline(self):
        clock = InlineReactor()
        resolver = StaticResolver(
            {
                ("TXT", "example.com"): NO_ANSWER,
                ("TXT", "sel._domainkey.example.com"): NO_ANSWER,
                **DMARC_REJECT,
            }
        )
        verifier = InboundVerifier(resolver, clock, "mx.a3mail.test", timeout=7)
        running = verifier.verify(
            client_ip="192.0.2.10", helo="h", mail_from="a@example.com", message=sign_rsa(MESSAGE)
        )
        self.assertNoResult(running)
        clock.advance(6.9)
        self.assertNoResult(running)
        clock.advance(0.1)
        results = self.successResultOf(running)
        self.assertEqual(
            (results.spf, results.dkim, results.dmarc), ("temperror", "temperror", "temperror")
        )
        self.assertEqual(results.dmarc_policy, "reject")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_everything_hanging(self):
        clock = InlineReactor()
        resolver = StaticResolver(
            {("TXT", "example.com"): NO_ANSWER, ("TXT", "_dmarc.example.com"): NO_ANSWER}
        )
        running = InboundVerifier(resolver, clock, "mx.a3mail.test", timeout=10).verify(
            client_ip="192.0.2.10", helo="h", mail_from="a@example.com", message=MESSAGE
        )
        clock.advance(10)
        results = self.successResultOf(running)
        self.assertEqual(
            (results.spf, results.dkim, results.dmarc), ("temperror", "none", "temperror")
        )


class HeaderTests(unittest.TestCase):
    def results(self, **changes):
        values = dict(
            spf="pass",
            spf_domain="example.com",
            dkim="pass",
            dkim_domains=("example.com",),
            dmarc="pass",
            dmarc_policy="reject",
            from_domain="example.com",
        )
        values.update(changes)
        return AuthResults(**values)

    def test_typical_header(self):
        self.assertEqual(
            self.results().header("mx.a3mail.test"),
            b"Authentication-Results: mx.a3mail.test;\r\n"
            b"\tspf=pass smtp.mailfrom=example.com;\r\n"
            b"\tdkim=pass header.d=example.com;\r\n"
            b"\tdmarc=pass header.from=example.com\r\n",
        )

    def test_failures_helo_scope_and_several_signatures(self):
        header = self.results(
            spf="softfail",
            spf_domain="[192.0.2.1]",
            spf_scope="helo",
            dkim_domains=("example.com", "esp.example"),
            dmarc="fail",
        ).header("mx.a3mail.test")
        self.assertEqual(
            header,
            b"Authentication-Results: mx.a3mail.test;\r\n"
            b'\tspf=softfail smtp.helo="[192.0.2.1]";\r\n'
            b"\tdkim=pass header.d=example.com;\r\n"
            b"\tdkim=pass header.d=esp.example;\r\n"
            b"\tdmarc=fail (p=reject) header.from=example.com\r\n",
        )

    def test_results_without_properties(self):
        header = self.results(
            spf_domain="",
            dkim="none",
            dkim_domains=(),
            dmarc="permerror",
            dmarc_policy=None,
            from_domain=None,
        ).header("mx")
        self.assertEqual(
            header,
            b"Authentication-Results: mx;\r\n\tspf=pass;\r\n\tdkim=none;\r\n\tdmarc=permerror\r\n",
        )

    def test_hostile_values_are_sanitised(self):
        header = self.results(
            spf_domain='evil.example\r\nX-Injected: yes; dkim=pass "\\',
            dkim_domains=("a.example\n\tdkim=pass",),
            from_domain="b\x00.example\x7f",
        ).header("mx\r\n.a3mail.test")
        self.assertEqual(header.count(b"\n"), 4)
        self.assertEqual(header.count(b"\r\n"), 4)
        self.assertNotIn(b"\r\nX-Injected", header)
        self.assertIn(b'smtp.mailfrom="evil.exampleX-Injected: yes; dkim=pass \\"\\\\"', header)
        self.assertIn(b'header.d="a.exampledkim=pass"', header)
        self.assertIn(b"header.from=b.example", header)
        self.assertTrue(header.startswith(b"Authentication-Results: mx.a3mail.test;"))

    def test_non_ascii_and_long_values(self):
        header = self.results(spf_domain="bücher.example", from_domain="x" * 1000).header("mx")
        self.assertIn(b"smtp.mailfrom=xn--bcher-kva.example", header)
        self.assertIn(b"header.from=" + b"x" * 255 + b"\r\n", header)
        header.decode("ascii")

    def test_unknown_result_words_are_refused(self):
        self.assertRaises(ValueError, self.results, spf="pass\r\nX: y")
        self.assertRaises(ValueError, self.results, dmarc_policy="bogus")

    def test_crlf_in_session_values_never_breaks_the_header(self):
        results, _ = verify(
            {},
            client_ip="192.0.2.10",
            helo="evil\r\nX-Injected: 1",
            mail_from="<>",
        )
        header = results.header("mx.a3mail.test")
        self.assertEqual(results.spf_scope, "helo")
        self.assertRegex(header, rb"\A[^\r\n]*(\r\n\t[^\r\n]*)*\r\n\Z")
        results, _ = verify({}, mail_from="a@evil.example\r\nX-Injected: 1")
        self.assertRegex(results.header("mx"), rb"\A[^\r\n]*(\r\n\t[^\r\n]*)*\r\n\Z")


_HEADER_SHAPE = re.compile(rb"\AAuthentication-Results: [^\r\n]*(\r\n\t[^\r\n]*)*\r\n\Z")

_names = st.sampled_from(
    [b"From", b"from", b"DKIM-Signature", b"Subject", b"From ", b"To", b" From", b"dkim-signature"]
)
_values = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b" a@example.com",
            b' "x@y" <z@example.com>, (c@d) e@f.example',
            b" v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=; b=",
            b" v=1; a=ed25519-sha256; d=; s=..; h=:; bh=AAAA; b=AAAA; l=-1; x=1",
            b" undisclosed:;",
            b" <@route:a@[1.2.3.4]>",
            b" \xff\xfe@\xc3\xa9.example",
        ]
    ),
)
_lines = st.lists(
    st.tuples(_names, _values, st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n\t"])), max_size=8
)


class NeverRaisesTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        lines=_lines,
        body=st.binary(max_size=200),
        helo=st.text(max_size=40),
        mail_from=st.text(max_size=60),
        client_ip=st.sampled_from(["192.0.2.10", "2001:db8::1", "::ffff:10.0.0.1", "junk", ""]),
    )
    def test_fuzzed_messages(self, lines, body, helo, mail_from, client_ip):
        message = b"".join(name + b":" + value + end for name, value, end in lines) + b"\r\n" + body
        zone = {**KEYS, **SPF_PASS, **DMARC_REJECT}
        results, _ = verify(zone, message, client_ip=client_ip, helo=helo, mail_from=mail_from)
        self.assertIsInstance(results, AuthResults)
        self.assertRegex(results.header("mx.a3mail.test"), _HEADER_SHAPE)

    @settings(max_examples=50, deadline=None)
    @given(st.binary(max_size=2000))
    def test_garbage_messages(self, message):
        results, _ = verify(KEYS, message)
        self.assertIsInstance(results, AuthResults)
        self.assertRegex(results.header("mx"), _HEADER_SHAPE)

    def test_huge_message(self):
        message = sign_rsa(MESSAGE + b"x" * 998 + b"\r\n") + (b"y" * 998 + b"\r\n") * 20000
        results, _ = verify(KEYS, message)
        self.assertEqual(results.dkim, "fail")  # the body changed after signing
        huge_headers = b"".join(b"X-H: %d\r\n" % i for i in range(50000)) + MESSAGE
        self.assertEqual(verify(KEYS, huge_headers)[0].from_domain, "example.com")
