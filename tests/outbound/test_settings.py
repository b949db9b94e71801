"""The [outbound] section read into the runner's settings."""

from __future__ import annotations

from pathlib import Path

from twisted.trial import unittest

from a3mail.config import ConfigError, load_config
from a3mail.outbound.runner import DEFAULT_SCHEDULE, Smarthost
from a3mail.outbound.service import runner_settings


class SettingsTests(unittest.TestCase):
    def load(self, text: str):
        path = Path(self.mktemp())
        path.write_text(text)
        return load_config(path, data_dir=self.mktemp())

    def test_defaults(self):
        config = load_config(None, data_dir=self.mktemp())
        settings = runner_settings(config.outbound, "out.test")
        self.assertEqual(settings.schedule, DEFAULT_SCHEDULE)
        self.assertEqual(settings.max_queue_lifetime, 5 * 86400)
        self.assertEqual(settings.delay_warning, 4 * 3600)
        self.assertEqual((settings.tls, settings.verify_certificates), ("starttls", False))
        self.assertIsNone(settings.smarthost)

    def test_smarthosts_static_mx_and_schedule(self):
        config = self.load(
            "[outbound]\n"
            'smarthost = "relay.example:587"\n'
            'smarthost_username = "u"\n'
            'smarthost_password = "p"\n'
            'retry_schedule = ["1m", "1h"]\n'
            'static_mx = { "Example.NET" = ["127.0.0.1:2526"] }\n'
            'smarthost_domains = { "example.org" = { host = "[::1]:465", tls = "tls" } }\n'
        )
        settings = runner_settings(config.outbound, "out.test")
        self.assertEqual(settings.smarthost, Smarthost("relay.example", 587, "starttls", "u", "p"))
        self.assertEqual(settings.domain_smarthosts, {"example.org": Smarthost("::1", 465, "tls")})
        self.assertEqual(settings.schedule, (60.0, 3600.0))
        self.assertEqual(dict(config.outbound.static_mx), {"example.net": ("127.0.0.1:2526",)})

    def test_bad_values_are_refused(self):
        for line in (
            'smarthost_domains = { "example.org" = { tls = "tls" } }',
            'smarthost_domains = { "example.org" = { host = "r", tls = "ssl" } }',
            "retry_schedule = []",
            'tls = "always"',
            'static_mx = { "example.net" = [] }',
        ):
            with self.assertRaises(ConfigError, msg=line):
                self.load(f"[outbound]\n{line}\n")
