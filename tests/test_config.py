"""Tests for a3mail.config."""

from __future__ import annotations

import operator
import os
import re
import socket
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import attrs
from twisted.trial.unittest import TestCase

from a3mail import config
from a3mail.config import (
    Config,
    ConfigError,
    DatabaseConfig,
    load_config,
    parse_duration,
    parse_size,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "etc" / "a3mail.toml"
DOCS = ROOT / "docs" / "configuration.md"

K, M, G, T = 1024, 1024**2, 1024**3, 1024**4


class ConfigTestCase(TestCase):
    """Helpers: write a file, load it, expect an error; pin the host name and cwd."""

    def setUp(self) -> None:
        self.patch(socket, "getfqdn", lambda: "Mail.Example.ORG")
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir(parents=True)
        old = os.getcwd()
        os.chdir(self.cwd)
        self.addCleanup(os.chdir, old)

    def write(self, text: str) -> Path:
        path = Path(self.mktemp()).resolve()
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def load(self, text: str, **kwargs: Any) -> Config:
        return load_config(self.write(text), **kwargs)

    def assertConfigError(self, text: str, message: str, **kwargs: Any) -> ConfigError:
        """Loading C{text} fails with exactly C{message}."""
        error = self.assertRaises(ConfigError, self.load, text, **kwargs)
        self.assertEqual(str(error), message)
        return error


class ParseSizeTests(TestCase):
    """parse_size()."""

    GOOD: list[tuple[str | int, int]] = [
        (0, 0),
        (1234, 1234),
        ("0", 0),
        ("1234", 1234),
        ("1234B", 1234),
        ("512K", 512 * K),
        ("512k", 512 * K),
        ("512KB", 512 * K),
        ("512KiB", 512 * K),
        ("512kib", 512 * K),
        ("50M", 50 * M),
        ("10MB", 10 * M),
        ("1G", G),
        ("1GiB", G),
        ("1gb", G),
        ("2T", 2 * T),
        ("1.5G", G + G // 2),
        ("1.5", 1),
        ("0.5K", 512),
        (".5K", 512),
        (" 50 M ", 50 * M),
    ]
    BAD = ["", "M", "ten", "-1", "-5M", "5X", "5 MBs", "1e3", "5M5", "0x10", "1,5M"]

    def test_good(self) -> None:
        for text, expected in self.GOOD:
            self.assertEqual(parse_size(text), expected, text)

    def test_bad(self) -> None:
        for text in self.BAD:
            error = self.assertRaises(ValueError, parse_size, text)
            self.assertIn(repr(text), str(error))

    def test_bad_ints(self) -> None:
        self.assertRaises(ValueError, parse_size, -1)
        self.assertRaises(ValueError, parse_size, True)
        self.assertRaises(ValueError, parse_size, 1.0)  # type: ignore[arg-type]


class ParseDurationTests(TestCase):
    """parse_duration()."""

    GOOD: list[tuple[str | float, float]] = [
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("30S", 30.0),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("4h", 4 * 3600.0),
        ("5d", 5 * 86400.0),
        ("1w", 7 * 86400.0),
        (" 15 m ", 900.0),
    ]
    BAD = ["", "s", "soon", "-5s", "5x", "5 min", "1h30m", "inf", "nan", "9" * 400 + "d"]

    def test_good(self) -> None:
        for text, expected in self.GOOD:
            result = parse_duration(text)
            self.assertIsInstance(result, float)
            self.assertEqual(result, expected, text)

    def test_bad(self) -> None:
        for text in self.BAD:
            self.assertRaises(ValueError, parse_duration, text)

    def test_bad_numbers(self) -> None:
        for value in (-1, -0.5, float("inf"), float("nan"), True):
            self.assertRaises(ValueError, parse_duration, value)


class DefaultsTests(ConfigTestCase):
    """load_config(None): no file, every default."""

    def test_defaults(self) -> None:
        c = load_config(None)
        data = self.cwd / "a3mail-data"
        self.assertEqual(c.hostname, "mail.example.org")
        self.assertEqual(c.data_dir, data)
        self.assertEqual(c.pgdata, data / "pgdata")
        self.assertIsNone(c.source)
        self.assertEqual(
            c.database,
            DatabaseConfig(
                dsn="",
                pool_min=2,
                pool_max=10,
                connect_timeout=5.0,
                statement_timeout=30.0,
                schema="public",
            ),
        )
        self.assertTrue(c.database.dsn_is_embedded)
        self.assertEqual(c.tls.certificate, data / "tls" / "cert.pem")
        self.assertEqual(c.tls.private_key, data / "tls" / "key.pem")
        self.assertTrue(c.tls.generated)
        on_by_default = {k: v for k, v in config.LISTENER_DEFAULTS.items() if v}
        self.assertEqual(dict(c.listeners), on_by_default)
        self.assertEqual(c.limits.max_message_size, 50 * M)
        self.assertEqual(c.limits.max_recipients, 100)
        self.assertEqual(c.limits.max_line_length, 4096)
        self.assertEqual(c.store.orphan_grace, 900.0)
        self.assertEqual(c.store.default_quota, 0)
        self.assertIs(c.store.maildir_fsync, True)
        self.assertEqual(c.logging.level, "info")
        self.assertIsNone(c.logging.json_file)

    def test_empty_file_is_defaults(self) -> None:
        path = self.write("")
        self.assertEqual(load_config(path), attrs.evolve(load_config(None), source=path))

    def test_frozen(self) -> None:
        c = load_config(None)
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, c, "hostname", "x")
        self.assertRaises(TypeError, operator.setitem, c.listeners, "smtp", "tcp:25")
        hash(c)


FULL = """
    hostname = "MX1.Example.net"
    data_dir = "/srv/a3mail"

    [database]
    dsn = "postgresql://a3mail:hunter2@db.example.net/mail"
    pool_min = 0
    pool_max = 40
    connect_timeout = 2.5
    statement_timeout = "1m"
    schema = "a3mail_1"

    [tls]
    certificate = "/etc/ssl/mx1.pem"
    private_key = "/etc/ssl/private/mx1.key"

    [listeners]

    [limits]
    max_message_size = "25MiB"
    max_recipients = 500
    max_line_length = 1000

    [store]
    orphan_grace = "1h"
    default_quota = 1073741824
    maildir_fsync = false

    [logging]
    level = "debug"
    json_file = "/var/log/a3mail.jsonl"
"""


class FileTests(ConfigTestCase):
    """Every section read from a file."""

    def test_every_section(self) -> None:
        path = self.write(FULL)
        c = load_config(path)
        self.assertEqual(c.source, path)
        self.assertEqual(c.hostname, "mx1.example.net")
        self.assertEqual(c.data_dir, Path("/srv/a3mail"))
        self.assertEqual(c.pgdata, Path("/srv/a3mail/pgdata"))
        self.assertEqual(
            c.database,
            DatabaseConfig(
                dsn="postgresql://a3mail:hunter2@db.example.net/mail",
                pool_min=0,
                pool_max=40,
                connect_timeout=2.5,
                statement_timeout=60.0,
                schema="a3mail_1",
            ),
        )
        self.assertFalse(c.database.dsn_is_embedded)
        self.assertEqual(c.tls.certificate, Path("/etc/ssl/mx1.pem"))
        self.assertEqual(c.tls.private_key, Path("/etc/ssl/private/mx1.key"))
        self.assertFalse(c.tls.generated)
        self.assertEqual(c.limits.max_message_size, 25 * M)
        self.assertEqual(c.limits.max_recipients, 500)
        self.assertEqual(c.limits.max_line_length, 1000)
        self.assertEqual(c.store.orphan_grace, 3600.0)
        self.assertEqual(c.store.default_quota, G)
        self.assertIs(c.store.maildir_fsync, False)
        self.assertEqual(c.logging.level, "debug")
        self.assertEqual(c.logging.json_file, Path("/var/log/a3mail.jsonl"))

    def test_repr_hides_password(self) -> None:
        c = load_config(self.write(FULL))
        self.assertNotIn("hunter2", repr(c))
        self.assertIn("dsn='***'", repr(c))
        self.assertIn("dsn=''", repr(load_config(None)))

    def test_relative_paths_against_cwd(self) -> None:
        """Relative paths are resolved against the working directory, not the file's."""
        c = self.load(
            """
            data_dir = "data"
            [tls]
            certificate = "certs/../certs/cert.pem"
            private_key = "./certs/key.pem"
            [logging]
            json_file = "log/a3mail.jsonl"
            """
        )
        self.assertEqual(c.data_dir, self.cwd / "data")
        self.assertEqual(c.tls.certificate, self.cwd / "certs" / "cert.pem")
        self.assertEqual(c.tls.private_key, self.cwd / "certs" / "key.pem")
        self.assertEqual(c.logging.json_file, self.cwd / "log" / "a3mail.jsonl")
        self.assertTrue(c.data_dir.is_absolute())

    def test_relative_config_path(self) -> None:
        Path("here.toml").write_text('data_dir = "d"\n')
        c = load_config("here.toml")
        self.assertEqual(c.source, self.cwd / "here.toml")
        self.assertEqual(c.data_dir, self.cwd / "d")

    def test_home_expanded(self) -> None:
        self.patch(os, "environ", {**os.environ, "HOME": "/home/mail"})
        self.assertEqual(self.load('data_dir = "~/a3"').data_dir, Path("/home/mail/a3"))

    def test_generated_tls_follows_data_dir(self) -> None:
        c = self.load('data_dir = "/srv/x"')
        self.assertEqual(c.tls.certificate, Path("/srv/x/tls/cert.pem"))
        self.assertTrue(c.tls.generated)

    def test_hostname_kept_lower_case(self) -> None:
        self.assertEqual(self.load('hostname = "localhost"').hostname, "localhost")


class OverrideTests(ConfigTestCase):
    """The data_dir argument and overrides."""

    def test_data_dir_overrides_file(self) -> None:
        c = self.load('data_dir = "/srv/file"', data_dir="/srv/cli")
        self.assertEqual(c.data_dir, Path("/srv/cli"))
        self.assertEqual(c.tls.private_key, Path("/srv/cli/tls/key.pem"))

    def test_data_dir_without_file(self) -> None:
        self.assertEqual(load_config(None, data_dir="rel").data_dir, self.cwd / "rel")

    def test_data_dir_replaces_invalid_file_value(self) -> None:
        self.assertEqual(self.load("data_dir = 5", data_dir="/d").data_dir, Path("/d"))

    def test_empty_data_dir(self) -> None:
        error = self.assertRaises(ConfigError, load_config, None, data_dir="")
        self.assertEqual(str(error), 'config: data_dir: expected a non-empty path, got ""')

    def test_overrides_nested_and_dotted(self) -> None:
        c = self.load(
            """
            [database]
            pool_max = 20
            schema = "s"
            """,
            overrides={"database": {"pool_max": 30}, "limits.max_recipients": 7},
        )
        self.assertEqual(c.database.pool_max, 30)
        self.assertEqual(c.database.schema, "s")
        self.assertEqual(c.limits.max_recipients, 7)

    def test_overrides_validated(self) -> None:
        error = self.assertRaises(
            ConfigError, load_config, None, overrides={"database.pool_maxx": 3}
        )
        self.assertEqual(
            str(error), 'config: database.pool_maxx: unknown key (did you mean "pool_max"?)'
        )


class SampleFileTests(ConfigTestCase):
    """The shipped etc/a3mail.toml and docs/configuration.md."""

    def schema(self) -> dict[str, object]:
        """Every dotted key with its default as written in TOML."""
        keys = {name: key.default for name, key in config._TOP_KEYS.items()}
        for section, section_keys in config._SECTION_KEYS.items():
            for name, key in section_keys.items():
                keys[f"{section}.{name}"] = key.default
        for name, endpoint in config.LISTENER_DEFAULTS.items():
            keys[f"listeners.{name}"] = endpoint
        return keys

    def test_sample_is_defaults(self) -> None:
        self.assertEqual(load_config(SAMPLE), attrs.evolve(load_config(None), source=SAMPLE))

    def test_sample_lists_every_key_with_its_default(self) -> None:
        raw = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
        flat: dict[str, object] = {}
        for name, value in raw.items():
            if isinstance(value, dict):
                flat.update({f"{name}.{key}": item for key, item in value.items()})
            else:
                flat[name] = value
        self.assertEqual(flat, self.schema())
        self.assertEqual(set(raw) - set(config._TOP_KEYS), {*config._SECTION_KEYS, "listeners"})

    def test_docs_list_every_key(self) -> None:
        documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", DOCS.read_text(), re.MULTILINE))
        self.assertEqual(documented, set(self.schema()))


HOST = "a host name (letters, digits, hyphens and dots)"


class ErrorTests(ConfigTestCase):
    """Every error is one line naming the key."""

    def test_unreadable_file(self) -> None:
        missing = self.cwd / "missing.toml"
        error = self.assertRaises(ConfigError, load_config, missing)
        self.assertEqual(
            str(error),
            f"config: {missing}: cannot read file: [Errno 2] No such file or directory",
        )
        self.assertIsNone(error.key)

    def test_invalid_toml(self) -> None:
        path = self.write('hostname = "x"\n\n[database]\npool_max = ten\n')
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertEqual(
            str(error), f"config: {path}: line 4: invalid TOML: Invalid value (column 12)"
        )

    def test_not_utf8(self) -> None:
        path = self.write("")
        path.write_bytes(b'hostname = "\xff"\n')
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertTrue(str(error).startswith(f"config: {path}: not UTF-8 text: "))

    def test_unknown_keys(self) -> None:
        self.assertConfigError(
            'hostnme = "x"', 'config: hostnme: unknown key (did you mean "hostname"?)'
        )
        self.assertConfigError("[frobnicate]\nx = 1", "config: frobnicate: unknown key")
        self.assertConfigError(
            "[database]\npool = 1", 'config: database.pool: unknown key (did you mean "pool_min"?)'
        )
        self.assertConfigError("[logging]\ncolour = true", "config: logging.colour: unknown key")
        self.assertConfigError(
            '[listeners]\nsmptp = "tcp:25"',
            'config: listeners.smptp: unknown key (did you mean "smtp"?)',
        )

    def test_wrong_types(self) -> None:
        cases = [
            ('[database]\npool_max = "ten"', 'database.pool_max: expected an integer, got "ten"'),
            ("[database]\npool_max = 10.0", "database.pool_max: expected an integer, got 10.0"),
            ("[database]\ndsn = 5", "database.dsn: expected a string, got 5"),
            (
                "[database]\nschema = []",
                "database.schema: expected a lower-case SQL identifier, got an array",
            ),
            ("hostname = {a = 1}", f"hostname: expected {HOST}, got a table"),
            (
                '[store]\nmaildir_fsync = "yes"',
                'store.maildir_fsync: expected true or false, got "yes"',
            ),
            ("[store]\nmaildir_fsync = 1", "store.maildir_fsync: expected true or false, got 1"),
            ("[tls]\ncertificate = 1", "tls.certificate: expected a path, got 1"),
            ("database = 5", "database: expected a table, got 5"),
            ("listeners = []", "listeners: expected a table, got an array"),
            (
                "[logging]\nlevel = 2",
                "logging.level: expected one of debug, info, warn, error, got 2",
            ),
            ("data_dir = 1979-05-27", "data_dir: expected a non-empty path, got 1979-05-27"),
        ]
        for text, message in cases:
            self.assertConfigError(text, "config: " + message)

    def test_bool_is_not_an_integer(self) -> None:
        self.assertConfigError(
            "[database]\npool_max = true",
            "config: database.pool_max: expected an integer, got true",
        )
        self.assertConfigError(
            "[limits]\nmax_message_size = false",
            f"config: limits.max_message_size: expected {config.SIZE_SYNTAX}, got false",
        )
        self.assertConfigError(
            "[database]\nconnect_timeout = true",
            f"config: database.connect_timeout: expected {config.DURATION_SYNTAX}, got true",
        )

    def test_int_accepted_as_duration(self) -> None:
        self.assertEqual(self.load("[database]\nconnect_timeout = 3").database.connect_timeout, 3.0)

    def test_bad_size(self) -> None:
        for value in ('"50 apples"', '"-1M"', "-1", "1.5"):
            error = self.assertConfigError(
                f"[limits]\nmax_message_size = {value}",
                f"config: limits.max_message_size: expected {config.SIZE_SYNTAX}, got {value}",
            )
            self.assertEqual(error.key, "limits.max_message_size")

    def test_bad_duration(self) -> None:
        for value in ('"soon"', '"-5m"', "-1", "nan", "inf"):
            self.assertConfigError(
                f"[store]\norphan_grace = {value}",
                f"config: store.orphan_grace: expected {config.DURATION_SYNTAX}, got {value}",
            )

    def test_ranges(self) -> None:
        cases = [
            ("[database]\npool_max = 0", "database.pool_max: must be at least 1, got 0"),
            ("[database]\npool_min = -1", "database.pool_min: must be at least 0, got -1"),
            (
                "[database]\npool_min = 20",
                "database.pool_min: must not exceed database.pool_max (10), got 20",
            ),
            (
                "[database]\nconnect_timeout = 0",
                "database.connect_timeout: must be greater than 0, got 0.0",
            ),
            (
                "[limits]\nmax_message_size = 0",
                "limits.max_message_size: must be greater than 0, got 0",
            ),
            ("[limits]\nmax_recipients = 0", "limits.max_recipients: must be at least 1, got 0"),
            (
                "[limits]\nmax_line_length = 80",
                "limits.max_line_length: must be at least 512, got 80",
            ),
        ]
        for text, message in cases:
            self.assertConfigError(text, "config: " + message)

    def test_bad_strings(self) -> None:
        cases = [
            (
                'hostname = "mail example"',
                f'hostname: expected {HOST}, got "mail example"',
            ),
            (
                'hostname = "-bad.example"',
                f'hostname: expected {HOST}, got "-bad.example"',
            ),
            (
                'hostname = "a\\r\\nb"',
                f'hostname: expected {HOST}, got "a\\r\\nb"',
            ),
            ('data_dir = ""', 'data_dir: expected a non-empty path, got ""'),
            (
                '[database]\nschema = "Public; drop"',
                'database.schema: expected a lower-case SQL identifier, got "Public; drop"',
            ),
            (
                '[logging]\nlevel = "verbose"',
                'logging.level: expected one of debug, info, warn, error, got "verbose"',
            ),
        ]
        for text, message in cases:
            self.assertConfigError(text, "config: " + message)

    def test_tls_needs_both(self) -> None:
        self.assertConfigError(
            '[tls]\ncertificate = "/c.pem"',
            "config: tls.private_key: must be set when tls.certificate is set",
        )
        self.assertConfigError(
            '[tls]\nprivate_key = "/k.pem"',
            "config: tls.certificate: must be set when tls.private_key is set",
        )

    def test_long_value_shortened(self) -> None:
        error = self.assertRaises(ConfigError, self.load, f'hostname = "{"x " * 200}"')
        self.assertLess(len(str(error)), 200)


class ListenerTests(ConfigTestCase):
    """[listeners], with listener names registered by patching LISTENER_DEFAULTS."""

    def setUp(self) -> None:
        super().setUp()
        self.patch(
            config,
            "LISTENER_DEFAULTS",
            {"smtp": "tcp:2525:interface=127.0.0.1", "imap": "tcp:1143:interface=127.0.0.1"},
        )

    def test_defaults(self) -> None:
        self.assertEqual(
            dict(load_config(None).listeners),
            {"smtp": "tcp:2525:interface=127.0.0.1", "imap": "tcp:1143:interface=127.0.0.1"},
        )

    def test_override_and_disable(self) -> None:
        c = self.load(
            """
            [listeners]
            smtp = "tcp:25"
            imap = ""
            """
        )
        self.assertEqual(dict(c.listeners), {"smtp": "tcp:25"})

    def test_other_endpoint_types(self) -> None:
        unix = self.cwd / "smtp.sock"
        c = self.load(
            f"""
            [listeners]
            smtp = "unix:{unix}:mode=660"
            imap = 'tcp6:1143:interface=\\:\\:1'
            """
        )
        self.assertEqual(c.listeners["smtp"], f"unix:{unix}:mode=660")
        self.assertFalse(unix.exists())

    def test_no_port_opened(self) -> None:
        """Validation never binds: a port in use validates fine and stays the other's."""
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        c = self.load(f'[listeners]\nsmtp = "tcp:{port}:interface=127.0.0.1"')
        self.assertEqual(c.listeners["smtp"], f"tcp:{port}:interface=127.0.0.1")

    def test_unknown(self) -> None:
        self.assertConfigError(
            '[listeners]\nsmtpp = "tcp:25"',
            'config: listeners.smtpp: unknown key (did you mean "smtp"?)',
        )

    def test_wrong_type(self) -> None:
        self.assertConfigError(
            "[listeners]\nsmtp = 25", "config: listeners.smtp: expected a string, got 25"
        )

    def test_bad_endpoints(self) -> None:
        cases = [
            ("tcp:abc", "invalid literal for int() with base 10: 'abc'"),
            ("frob:25", "Unknown endpoint type: 'frob'"),
            ("25", "Unknown endpoint type: '25'"),
            ("tcp:25:bogus=1", "_parseTCP() got an unexpected keyword argument 'bogus'"),
            ("tcp:65536", "port 65536 is not between 0 and 65535"),
            ("tcp:-1", "port -1 is not between 0 and 65535"),
        ]
        for endpoint, reason in cases:
            error = self.assertConfigError(
                f'[listeners]\nsmtp = "{endpoint}"',
                f'config: listeners.smtp: cannot parse endpoint "{endpoint}": {reason}',
            )
            self.assertEqual(error.key, "listeners.smtp")

    def test_ssl_endpoint_missing_files(self) -> None:
        error = self.assertRaises(
            ConfigError, self.load, '[listeners]\nimap = "ssl:1993:privateKey=/nonexistent.pem"'
        )
        self.assertIn('listeners.imap: cannot parse endpoint "ssl:1993', str(error))
        self.assertIn("No such file or directory", str(error))

    def test_bad_default_reported(self) -> None:
        self.patch(config, "LISTENER_DEFAULTS", {"smtp": "tcp:nope"})
        error = self.assertRaises(ConfigError, load_config, None)
        self.assertEqual(error.key, "listeners.smtp")


class ConfigErrorTests(TestCase):
    """ConfigError itself."""

    def test_str(self) -> None:
        self.assertEqual(str(ConfigError("a.b", "bad")), "config: a.b: bad")
        self.assertEqual(str(ConfigError(None, "bad")), "config: bad")

    def test_attributes(self) -> None:
        error = ConfigError("a.b", "bad")
        self.assertEqual((error.key, error.problem), ("a.b", "bad"))
