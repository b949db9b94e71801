"""SPF (RFC 7208) evaluation over a static DNS table, and its macro language."""

from __future__ import annotations

from twisted.trial import unittest

from a3mail.smtp.dns import NO_ANSWER, DNSTemporaryError, StaticResolver
from a3mail.smtp.spf import SPFOutcome, check_spf, parse_record, split_mail_from
from a3mail.smtp.spf_macros import MacroSyntaxError, check_domain_spec, expand, truncate_domain

CLIENT = "192.0.2.10"
OTHER = "198.51.100.1"
CLIENT6 = "2001:db8::10"


def _chain(length: int, final: str) -> dict:
    """example.com includes l1.example.com ... which includes l<length>.example.com."""
    zone = {("TXT", "example.com"): ["v=spf1 include:l1.example.com -all"]}
    for i in range(1, length):
        zone[("TXT", f"l{i}.example.com")] = [f"v=spf1 include:l{i + 1}.example.com -all"]
    zone[("TXT", f"l{length}.example.com")] = [final]
    return zone


def _txt(record: str, *extra: tuple[str, str, object]) -> dict:
    """A zone with C{record} as example.com's SPF record, plus (type, name, answer) entries."""
    zone: dict = {("TXT", "example.com"): [record]}
    for rtype, name, answer in extra:
        zone[(rtype, name)] = answer
    return zone


#: (what, zone, client ip, MAIL FROM, expected result)
TABLE = [
    ("ip4 in CIDR passes", _txt("v=spf1 ip4:192.0.2.0/24 -all"), CLIENT, "a@example.com", "pass"),
    ("ip4 outside fails", _txt("v=spf1 ip4:192.0.2.0/24 -all"), OTHER, "a@example.com", "fail"),
    ("ip4 host address", _txt("v=spf1 ip4:192.0.2.10 -all"), CLIENT, "a@example.com", "pass"),
    ("~all softfails", _txt("v=spf1 ip4:192.0.2.0/24 ~all"), OTHER, "a@example.com", "softfail"),
    ("?all is neutral", _txt("v=spf1 ip4:192.0.2.0/24 ?all"), OTHER, "a@example.com", "neutral"),
    ("no match is neutral", _txt("v=spf1 ip4:203.0.113.1"), CLIENT, "a@example.com", "neutral"),
    ("-ip4 qualifier", _txt("v=spf1 -ip4:192.0.2.0/24 +all"), CLIENT, "a@example.com", "fail"),
    ("upper case", _txt("V=SPF1 IP4:192.0.2.0/24 -ALL"), CLIENT, "a@example.com", "pass"),
    ("extra spaces", _txt("v=spf1  ip4:192.0.2.0/24   -all "), CLIENT, "a@example.com", "pass"),
    ("no record", {}, CLIENT, "a@example.com", "none"),
    (
        "only other TXT",
        {("TXT", "example.com"): ["v=spf10", "hello"]},
        CLIENT,
        "a@example.com",
        "none",
    ),
    (
        "two records",
        {("TXT", "example.com"): ["v=spf1 -all", "v=spf1 +all"]},
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("unknown mechanism", _txt("v=spf1 foo:bar -all"), CLIENT, "a@example.com", "permerror"),
    (
        "error after a match",
        _txt("v=spf1 +all ip4:1.2.3.4/99"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("ip4 bad address", _txt("v=spf1 ip4:192.0.2.300 -all"), CLIENT, "a@example.com", "permerror"),
    (
        "ip4 leading zero CIDR",
        _txt("v=spf1 ip4:192.0.2.0/024"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("ip6 CIDR too long", _txt("v=spf1 ip6:2001:db8::/129"), CLIENT6, "a@example.com", "permerror"),
    ("include without domain", _txt("v=spf1 include -all"), CLIENT, "a@example.com", "permerror"),
    ("all with argument", _txt("v=spf1 all:x.example"), CLIENT, "a@example.com", "permerror"),
    (
        "bad macro letter",
        _txt("v=spf1 exists:%{x}.example.com"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "zero transformer",
        _txt("v=spf1 exists:%{d0}.example.com"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("lone percent", _txt("v=spf1 exists:50%.example.com"), CLIENT, "a@example.com", "permerror"),
    ("domain without top label", _txt("v=spf1 a:foo -all"), CLIENT, "a@example.com", "permerror"),
    (
        "two redirects",
        _txt("v=spf1 redirect=a.example redirect=b.example"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "unknown modifier ignored",
        _txt("v=spf1 foo=bar ip4:192.0.2.10 -all"),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "non-ASCII record",
        {("TXT", "example.com"): ["v=spf1 a:é.example -all".encode()]},
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "include passes",
        _txt(
            "v=spf1 include:_spf.example.net -all",
            ("TXT", "_spf.example.net", ["v=spf1 ip4:192.0.2.0/24 -all"]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "include fail does not match",
        _txt("v=spf1 include:_spf.example.net ~all", ("TXT", "_spf.example.net", ["v=spf1 -all"])),
        CLIENT,
        "a@example.com",
        "softfail",
    ),
    (
        "include without record",
        _txt("v=spf1 include:nothing.example.net -all"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "include with temperror",
        _txt(
            "v=spf1 include:down.example.net -all",
            ("TXT", "down.example.net", DNSTemporaryError("x")),
        ),
        CLIENT,
        "a@example.com",
        "temperror",
    ),
    (
        "include with permerror",
        _txt("v=spf1 include:bad.example.net -all", ("TXT", "bad.example.net", ["v=spf1 bad"])),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("include loop", _txt("v=spf1 include:example.com -all"), CLIENT, "a@example.com", "permerror"),
    (
        "redirect",
        _txt(
            "v=spf1 redirect=_spf.example.net",
            ("TXT", "_spf.example.net", ["v=spf1 ip4:192.0.2.0/24 -all"]),
        ),
        OTHER,
        "a@example.com",
        "fail",
    ),
    (
        "redirect target's %{d}",
        _txt(
            "v=spf1 redirect=_spf.example.net",
            ("TXT", "_spf.example.net", ["v=spf1 a:%{d} -all"]),
            ("A", "_spf.example.net", [CLIENT]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "redirect without record",
        _txt("v=spf1 redirect=none.example.net"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("redirect loop", _txt("v=spf1 redirect=example.com"), CLIENT, "a@example.com", "permerror"),
    (
        "redirect after match unused",
        _txt("v=spf1 ip4:192.0.2.10 redirect=none.example.net"),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "10 DNS terms are allowed",
        _chain(10, "v=spf1 ip4:192.0.2.10 -all"),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "11 DNS terms are too many",
        _chain(11, "v=spf1 ip4:192.0.2.10 -all"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "11 a terms",
        _txt(
            "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(11)) + " +all",
            *[("A", f"h{i}.example.com", ["203.0.113.1"]) for i in range(11)],
        ),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "two void lookups",
        _txt("v=spf1 a:v1.example.com a:v2.example.com +all"),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "three void lookups",
        _txt("v=spf1 a:v1.example.com a:v2.example.com exists:v3.example.com +all"),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    ("a", _txt("v=spf1 a -all", ("A", "example.com", [CLIENT])), CLIENT, "a@example.com", "pass"),
    (
        "a no match",
        _txt("v=spf1 a -all", ("A", "example.com", [OTHER])),
        CLIENT,
        "a@example.com",
        "fail",
    ),
    (
        "a other domain /24",
        _txt("v=spf1 a:h.example.org/24 -all", ("A", "h.example.org", ["192.0.2.200"])),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "a /0 matches any IPv4",
        _txt("v=spf1 a:h.example.org/0 -all", ("A", "h.example.org", ["203.0.113.5"])),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "a uses AAAA for IPv6",
        _txt("v=spf1 a -all", ("A", "example.com", [CLIENT]), ("AAAA", "example.com", [CLIENT6])),
        CLIENT6,
        "a@example.com",
        "pass",
    ),
    (
        "a dual CIDR //64",
        _txt("v=spf1 a/32//64 -all", ("AAAA", "example.com", ["2001:db8::ffff"])),
        CLIENT6,
        "a@example.com",
        "pass",
    ),
    (
        "a dual CIDR //128 no match",
        _txt("v=spf1 a/24//128 -all", ("AAAA", "example.com", ["2001:db8::ffff"])),
        CLIENT6,
        "a@example.com",
        "fail",
    ),
    (
        "a DNS error",
        _txt("v=spf1 a -all", ("A", "example.com", DNSTemporaryError("x"))),
        CLIENT,
        "a@example.com",
        "temperror",
    ),
    (
        "mx",
        _txt(
            "v=spf1 mx -all",
            ("MX", "example.com", [(10, "mx1.example.com"), (20, "mx2.example.com")]),
            ("A", "mx2.example.com", [CLIENT]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "mx /24",
        _txt(
            "v=spf1 mx/24 -all",
            ("MX", "example.com", [(10, "mx1.example.com")]),
            ("A", "mx1.example.com", ["192.0.2.99"]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "mx no match",
        _txt(
            "v=spf1 mx -all",
            ("MX", "example.com", [(10, "mx1.example.com")]),
            ("A", "mx1.example.com", [OTHER]),
        ),
        CLIENT,
        "a@example.com",
        "fail",
    ),
    (
        "null MX",
        _txt("v=spf1 mx -all", ("MX", "example.com", [(0, ".")])),
        CLIENT,
        "a@example.com",
        "fail",
    ),
    (
        "more than 10 MX",
        _txt(
            "v=spf1 mx -all", ("MX", "example.com", [(i, f"mx{i}.example.com") for i in range(11)])
        ),
        CLIENT,
        "a@example.com",
        "permerror",
    ),
    (
        "mx host lookup error",
        _txt(
            "v=spf1 mx -all",
            ("MX", "example.com", [(10, "mx1.example.com")]),
            ("A", "mx1.example.com", DNSTemporaryError("x")),
        ),
        CLIENT,
        "a@example.com",
        "temperror",
    ),
    ("ip6 passes", _txt("v=spf1 ip6:2001:db8::/32 -all"), CLIENT6, "a@example.com", "pass"),
    ("ip6 host", _txt("v=spf1 ip6:2001:db8::10 -all"), CLIENT6, "a@example.com", "pass"),
    ("ip6 other network", _txt("v=spf1 ip6:2001:db9::/32 -all"), CLIENT6, "a@example.com", "fail"),
    ("ip6 never matches IPv4", _txt("v=spf1 ip6:::/0 -all"), CLIENT, "a@example.com", "fail"),
    ("ip4 never matches IPv6", _txt("v=spf1 ip4:0.0.0.0/0 -all"), CLIENT6, "a@example.com", "fail"),
    (
        "IPv4-mapped client is IPv4",
        _txt("v=spf1 ip4:192.0.2.0/24 -all"),
        "::ffff:192.0.2.10",
        "a@example.com",
        "pass",
    ),
    (
        "exists with macros",
        _txt(
            "v=spf1 exists:%{ir}.%{l1r-}.%{v}._spf.%{d} -all",
            ("A", "10.2.0.192.a.in-addr._spf.example.com", ["127.0.0.2"]),
        ),
        CLIENT,
        "a-b@example.com",
        "pass",
    ),
    (
        "ptr validated",
        _txt(
            "v=spf1 ptr -all",
            ("PTR", "10.2.0.192.in-addr.arpa", ["mail.example.com"]),
            ("A", "mail.example.com", [CLIENT]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "ptr not validated",
        _txt(
            "v=spf1 ptr -all",
            ("PTR", "10.2.0.192.in-addr.arpa", ["mail.example.com"]),
            ("A", "mail.example.com", [OTHER]),
        ),
        CLIENT,
        "a@example.com",
        "fail",
    ),
    (
        "ptr other domain",
        _txt(
            "v=spf1 ptr -all",
            ("PTR", "10.2.0.192.in-addr.arpa", ["mail.example.org"]),
            ("A", "mail.example.org", [CLIENT]),
        ),
        CLIENT,
        "a@example.com",
        "fail",
    ),
    (
        "%{p} macro",
        _txt(
            "v=spf1 exists:%{p}.ok.example.com -all",
            ("PTR", "10.2.0.192.in-addr.arpa", ["mail.example.com"]),
            ("A", "mail.example.com", [CLIENT]),
            ("A", "mail.example.com.ok.example.com", ["127.0.0.2"]),
        ),
        CLIENT,
        "a@example.com",
        "pass",
    ),
    (
        "TXT lookup error",
        {("TXT", "example.com"): DNSTemporaryError("timeout")},
        CLIENT,
        "a@example.com",
        "temperror",
    ),
    ("malformed domain", {}, CLIENT, "a@exa..mple.com", "none"),
    ("single-label domain", {("TXT", "localhost"): ["v=spf1 -all"]}, CLIENT, "a@localhost", "none"),
    ("address literal", {}, CLIENT, "a@[192.0.2.1]", "none"),
    ("bracketed path", _txt("v=spf1 ip4:192.0.2.10 -all"), CLIENT, "<a@example.com>", "pass"),
    (
        "IDN domain",
        {("TXT", "xn--bcher-kva.example"): ["v=spf1 -all"]},
        CLIENT,
        "a@bücher.example",
        "fail",
    ),
]


class SPFTableTests(unittest.TestCase):
    def test_table(self):
        for what, zone, ip, mail_from, expected in TABLE:
            resolver = StaticResolver(zone)
            outcome = self.successResultOf(
                check_spf(resolver, client_ip=ip, helo="client.example.org", mail_from=mail_from)
            )
            self.assertEqual(outcome.result, expected, f"{what}: {resolver.queries}")

    def test_null_sender_checks_helo(self):
        resolver = StaticResolver({("TXT", "mta.example.org"): ["v=spf1 ip4:192.0.2.10 -all"]})
        for null in ("", "<>"):
            outcome = self.successResultOf(
                check_spf(resolver, client_ip=CLIENT, helo="mta.example.org", mail_from=null)
            )
            self.assertEqual(outcome, SPFOutcome("pass", "mta.example.org", "helo"))

    def test_helo_address_literal_is_none(self):
        outcome = self.successResultOf(
            check_spf(StaticResolver(), client_ip=CLIENT, helo="[192.0.2.10]", mail_from="<>")
        )
        self.assertEqual(outcome, SPFOutcome("none", "[192.0.2.10]", "helo"))

    def test_reported_domain_is_normalised(self):
        outcome = self.successResultOf(
            check_spf(StaticResolver(), client_ip=CLIENT, helo="h", mail_from="a@Example.COM.")
        )
        self.assertEqual(outcome.domain, "example.com")

    def test_bad_client_address_is_none(self):
        outcome = self.successResultOf(
            check_spf(StaticResolver(), client_ip="not an ip", helo="h", mail_from="a@example.com")
        )
        self.assertEqual(outcome.result, "none")

    def test_mx_hosts_are_looked_up_concurrently(self):
        resolver = StaticResolver(
            _txt(
                "v=spf1 mx -all",
                ("MX", "example.com", [(10, "slow.example.com"), (20, "fast.example.com")]),
                ("A", "slow.example.com", NO_ANSWER),
                ("A", "fast.example.com", [CLIENT]),
            )
        )
        outcome = self.successResultOf(
            check_spf(resolver, client_ip=CLIENT, helo="h", mail_from="a@example.com")
        )
        self.assertEqual(outcome.result, "pass")

    def test_no_more_lookups_after_the_limit(self):
        resolver = StaticResolver(_chain(30, "v=spf1 -all"))
        self.successResultOf(
            check_spf(resolver, client_ip=CLIENT, helo="h", mail_from="a@example.com")
        )
        self.assertEqual(len(resolver.queries), 11)  # the record and 10 includes

    def test_split_mail_from(self):
        self.assertEqual(split_mail_from("<a@b.example>", "h"), ("mailfrom", "a", "b.example"))
        self.assertEqual(
            split_mail_from("@r.example:a@b.example", "h"), ("mailfrom", "a", "b.example")
        )
        self.assertEqual(split_mail_from("b.example", "h"), ("mailfrom", "postmaster", "b.example"))
        self.assertEqual(
            split_mail_from("@b.example", "h"), ("mailfrom", "postmaster", "b.example")
        )
        self.assertEqual(split_mail_from("<>", "h.example"), ("helo", "postmaster", "h.example"))

    def test_parse_record(self):
        record = parse_record("v=spf1 a/24//64 mx:m.example ~ip4:192.0.2.0/24 exp=x.example -all")
        self.assertEqual([d.mechanism for d in record.directives], ["a", "mx", "ip4", "all"])
        self.assertEqual(
            (record.directives[0].ip4_prefix, record.directives[0].ip6_prefix), (24, 64)
        )
        self.assertEqual(record.directives[1].domain_spec, "m.example")
        self.assertEqual(record.directives[2].result, "softfail")
        self.assertEqual(record.explanation, "x.example")


class MacroTests(unittest.TestCase):
    """The examples of RFC 7208 section 7.4."""

    VALUES = {
        "s": "strong-bad@email.example.com",
        "l": "strong-bad",
        "o": "email.example.com",
        "d": "email.example.com",
        "i": "192.0.2.3",
        "v": "in-addr",
        "h": "mx.example.org",
    }

    EXAMPLES = [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{S}", "strong-bad%40email.example.com"),
        ("%%%_%-", "% %20"),
        ("%{d999999999999}", "email.example.com"),
    ]

    def test_rfc_examples(self):
        for spec, expected in self.EXAMPLES:
            self.assertEqual(expand(spec, self.VALUES), expected, spec)

    def test_ipv6_i_macro_through_exists(self):
        name = (
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        )
        resolver = StaticResolver(
            {
                ("TXT", "example.com"): ["v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"],
                ("A", name): ["127.0.0.2"],
            }
        )
        outcome = self.successResultOf(
            check_spf(resolver, client_ip="2001:db8::cb01", helo="h", mail_from="a@example.com")
        )
        self.assertEqual(outcome.result, "pass")

    def test_domain_spec_syntax(self):
        for good in ["example.com", "%{d}", "_spf.%{d2}", "x.example.com.", "%{ir}.%{v}.x.example"]:
            check_domain_spec(good)
        for bad in ["", "foo", "x.example.1", "%{q}.example.com", "a%b.example", "%{d0}", "x.-com"]:
            self.assertRaises(MacroSyntaxError, check_domain_spec, bad)

    def test_truncate_domain(self):
        long_name = ".".join(["a" * 60] * 5) + ".example.com"
        truncated = truncate_domain(long_name)
        self.assertLessEqual(len(truncated), 253)
        self.assertTrue(truncated.endswith(".example.com"))
        self.assertTrue(long_name.endswith(truncated))
