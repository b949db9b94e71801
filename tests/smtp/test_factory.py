"""The [smtp] configuration section, the listener registry, the factory builders, the
address parser and the trace headers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from a3mail import config as config_module
from a3mail.config import ConfigError, load_config
from a3mail.listeners import IMPLICIT_TLS, PROTOCOL_FACTORIES
from a3mail.runtime import Runtime
from a3mail.smtp import headers
from a3mail.smtp.addresses import AddressError, literal_address, parse_argument
from a3mail.smtp.authres import InboundVerifier, StaticResolver, TwistedNamesResolver
from a3mail.smtp.factory import SMTPFactory, _server, build_factory
from a3mail.smtp.session import MX, SUBMISSION


class ConfigTests(TestCase):
    def load(self, text: str):
        path = Path(self.mktemp())
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config(path)

    def test_defaults(self):
        smtp = load_config(None).smtp
        self.assertEqual(
            (smtp.over_quota_reply, smtp.dmarc_failure, smtp.verify_inbound, smtp.sent_copy),
            (452, "tag", True, True),
        )
        self.assertEqual((smtp.command_timeout, smtp.data_timeout), (300.0, 300.0))
        self.assertEqual((smtp.max_connections_per_ip, smtp.max_errors), (20, 10))
        self.assertEqual((smtp.max_data_line_length, smtp.dns_servers), (998, ()))
        self.assertEqual(dict(smtp.static_dns), {})
        self.assertEqual(
            {k: config_module.LISTENER_DEFAULTS[k] for k in ("smtp", "submission", "submissions")},
            {
                "smtp": "tcp:2525:interface=127.0.0.1",
                "submission": "tcp:5870:interface=127.0.0.1",
                "submissions": "tcp:4650:interface=127.0.0.1",
            },
        )

    def test_values(self):
        smtp = self.load(
            """
            [smtp]
            over_quota_reply = "552"
            dmarc_failure = "junk"
            dns_servers = ["192.0.2.53", "[2001:db8::53]:5353"]
            command_timeout = "1m"
            [smtp.static_dns]
            "TXT Example.NET." = ["v=spf1 -all"]
            "MX example.net" = ["10 mx.example.net"]
            """
        ).smtp
        self.assertEqual((smtp.over_quota_reply, smtp.dmarc_failure), (552, "junk"))
        self.assertEqual(smtp.dns_servers, ("192.0.2.53", "[2001:db8::53]:5353"))
        self.assertEqual(smtp.command_timeout, 60.0)
        self.assertEqual(
            dict(smtp.static_dns),
            {
                ("TXT", "example.net"): ("v=spf1 -all",),
                ("MX", "example.net"): ("10 mx.example.net",),
            },
        )

    def test_errors_name_the_key(self):
        cases = {
            '[smtp]\nover_quota_reply = "451"': "smtp.over_quota_reply",
            "[smtp]\nover_quota_reply = 452": "smtp.over_quota_reply",
            '[smtp]\ndmarc_failure = "drop"': "smtp.dmarc_failure",
            '[smtp]\ndns_servers = ["dns.example"]': "smtp.dns_servers",
            "[smtp]\ndns_servers = [53]": "smtp.dns_servers",
            '[smtp]\nstatic_dns = { "TXT" = ["x"] }': "smtp.static_dns",
            '[smtp]\nstatic_dns = { "TXT a.example" = "x" }': "smtp.static_dns",
            "[smtp]\nmax_data_line_length = 500": "smtp.max_data_line_length",
            "[smtp]\nmax_errors = 0": "smtp.max_errors",
            "[smtp]\ncommand_timeout = 0": "smtp.command_timeout",
            "[smtp]\nrelay = true": "smtp.relay",
        }
        for text, key in cases.items():
            error = self.assertRaises(ConfigError, self.load, text)
            self.assertEqual(error.key, key, text)


class FactoryTests(TestCase):
    def runtime(self, **overrides) -> Runtime:
        config = load_config(None, data_dir=self.mktemp(), overrides={"hostname": "mx.test"})
        config = attrs.evolve(config, smtp=attrs.evolve(config.smtp, **overrides))
        return Runtime(config=config, store=object(), tls=object(), reactor=reactor)

    def test_registered_listeners(self):
        self.assertIn("submissions", IMPLICIT_TLS)
        runtime = self.runtime(static_dns={("TXT", "a.example"): ("v=spf1 -all",)})
        modes = {}
        for name in ("smtp", "submission", "submissions"):
            factory = PROTOCOL_FACTORIES[name](runtime)
            self.assertIsInstance(factory, SMTPFactory)
            modes[name] = (factory.context.mode, factory.context.name)
        self.assertEqual(
            modes,
            {
                "smtp": (MX, "smtp"),
                "submission": (SUBMISSION, "submission"),
                "submissions": (SUBMISSION, "submissions"),
            },
        )

    def test_verifier_from_config(self):
        static = build_factory(
            self.runtime(static_dns={("MX", "a.example"): ("10 mx.a.example",)}), MX
        ).context.delivery.verifier
        self.assertIsInstance(static, InboundVerifier)
        self.assertIsInstance(static.resolver, StaticResolver)
        self.assertEqual(static.authserv_id, "mx.test")
        off = build_factory(self.runtime(verify_inbound=False), MX)
        self.assertIsNone(off.context.delivery.verifier)
        self.assertIsNone(build_factory(self.runtime(), SUBMISSION).context.delivery.verifier)
        self.assertEqual(_server("192.0.2.1"), ("192.0.2.1", 53))
        self.assertEqual(_server("192.0.2.1:5353"), ("192.0.2.1", 5353))
        self.assertEqual(_server("[2001:db8::1]:54"), ("2001:db8::1", 54))
        self.assertEqual(_server("2001:db8::1"), ("2001:db8::1", 53))

    def test_real_dns_resolver(self):
        verifier = build_factory(self.runtime(dns_servers=("127.0.0.1:5353",)), MX).context
        resolver = verifier.delivery.verifier.resolver
        self.assertIsInstance(resolver, TwistedNamesResolver)
        self.assertEqual(resolver._client.servers, [("127.0.0.1", 5353)])

    def test_unknown_mode(self):
        self.assertRaises(ValueError, build_factory, self.runtime(), "relay")


class AddressTests(TestCase):
    def test_paths(self):
        arg = parse_argument(
            b"FROM:<a.b+c@Example.NET> SIZE=10 BODY=8BITMIME", b"FROM", allow_null=True
        )
        self.assertEqual((arg.path.local, arg.path.domain), ("a.b+c", "Example.NET"))
        self.assertEqual(arg.params, {"SIZE": "10", "BODY": "8BITMIME"})
        self.assertTrue(parse_argument(b"from:<>", b"FROM", allow_null=True).path.is_null)
        literal = parse_argument(b"TO:<x@[IPv6:2001:db8::1]>", b"TO", allow_null=False).path
        self.assertTrue(literal.is_literal)
        self.assertEqual(literal_address(literal.domain), "2001:db8::1")
        quoted = parse_argument(b'TO:<"a>b"@example.com>', b"TO", allow_null=False).path
        self.assertEqual(quoted.local, '"a>b"')
        utf8 = parse_argument("TO:<δοκιμή@παράδειγμα.δοκιμή>".encode(), b"TO", allow_null=False)
        self.assertFalse(utf8.path.is_ascii)

    def test_bad_paths(self):
        for bad in (
            b"TO:<>",
            b"TO:<a@>",
            b"TO:<@example.com>",
            b"TO:<a..b@example.com>",
            b"TO:<" + b"a" * 65 + b"@example.com>",
            b"TO:<a@" + b"b" * 64 + b".com>",
            b"TO:<a@[1.2.3]>",
            b"TO:<a@example.com>x",
            b"TO:<a@example.com> =x",
            b"TO:<a@example.com> K=\x01",
            b"TO:<a@b.example",
            b"TX:<a@b.example>",
        ):
            self.assertRaises(AddressError, parse_argument, bad, b"TO", allow_null=False)


class HeaderTests(TestCase):
    def test_received_and_return_path(self):
        header = headers.received(
            helo="bad\r\nX-Injected: 1 (x)",
            client_ip="192.0.2.1",
            hostname="mx.test",
            protocol="ESMTPS",
            queue_id="ABC",
            recipient="a@b.example",
            when=86400,
        )
        self.assertEqual(
            header,
            b"Received: from bad??X-Injected:?1??x? ([192.0.2.1])\r\n"
            b"\tby mx.test (a3mail) with ESMTPS id ABC\r\n"
            b"\tfor <a@b.example>;\r\n\tFri, 02 Jan 1970 00:00:00 +0000\r\n",
        )
        self.assertEqual(headers.return_path(""), b"Return-Path: <>\r\n")
        self.assertEqual(
            headers.protocol_name(esmtp=True, tls=True, authenticated=True, utf8=False), "ESMTPSA"
        )
        self.assertEqual(
            headers.protocol_name(esmtp=True, tls=False, authenticated=False, utf8=True),
            "UTF8SMTP",
        )
        self.assertEqual(
            headers.protocol_name(esmtp=False, tls=False, authenticated=False, utf8=False), "SMTP"
        )
