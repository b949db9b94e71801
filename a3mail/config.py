"""The a3mail configuration: one TOML file read into frozen attrs records.

Every key is described once, in the schema tables (C{_TOP_KEYS}, C{_SECTION_KEYS},
L{LISTENER_DEFAULTS}); adding a key is one schema line, one record field, and its
documentation in etc/a3mail.toml and docs/configuration.md (a test checks both).
Relative paths are resolved against the working directory at load time.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
import socket
import tomllib
import types
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor

#: Listener name -> default strports endpoint string.  The keys are exactly
#: the names allowed in the ``[listeners]`` table; a protocol front registers
#: its listener by adding a line here.
LISTENER_DEFAULTS: dict[str, str] = {
    "smtp": "tcp:2525:interface=127.0.0.1",
    "submission": "tcp:5870:interface=127.0.0.1",
    "submissions": "tcp:4650:interface=127.0.0.1",
    "pop3": "tcp:1110:interface=127.0.0.1",
    "pop3s": "tcp:9950:interface=127.0.0.1",
    "http": "tcp:8080:interface=127.0.0.1",
}

#: Levels accepted by ``logging.level``.
LOG_LEVELS = ("debug", "info", "warn", "error")


class ConfigError(Exception):
    """
    The configuration cannot be used.  C{str()} is one line, C{config: <key>:
    <problem>}, or C{config: <problem>} when L{key} is L{None} (unreadable file,
    invalid TOML).  C{key} is the dotted key at fault; C{problem} the rest.
    """

    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        if self.key is None:
            return f"config: {self.problem}"
        return f"config: {self.key}: {self.problem}"


# -- sizes and durations ------------------------------------------------------

_NUMBER_UNIT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")

_SIZE_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgt", start=1):
    for _suffix in ("", "b", "ib"):
        _SIZE_UNITS[_letter + _suffix] = 1024**_power

_DURATION_UNITS: dict[str, int | Decimal] = {"": 1, "ms": Decimal("0.001"), "s": 1, "m": 60}
_DURATION_UNITS.update(h=3600, d=86400, w=604800)

SIZE_SYNTAX = 'a number of bytes or a size like "512K", "50M", "1G"'
DURATION_SYNTAX = 'a number of seconds or a duration like "30s", "5m", "4h", "5d"'


def _scaled(text: object, units: Mapping[str, int | Decimal], what: str, syntax: str) -> Decimal:
    """C{text}, a number >= 0 or a string "<number><unit>", in base units."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"invalid {what} {text!r}: must be a finite number >= 0")
        return Decimal(text)
    match = _NUMBER_UNIT.fullmatch(text) if isinstance(text, str) else None
    if match is None or match[2].lower() not in units:
        raise ValueError(f"invalid {what} {text!r}: expected {syntax}")
    return Decimal(match[1]) * units[match[2].lower()]


def parse_size(text: str | int) -> int:
    """
    Parse a size in bytes.

    Accepts a non-negative integer, or a string holding a number with an
    optional unit: C{B}, C{K}, C{M}, C{G}, C{T}, each also spelled C{KB} or
    C{KiB} (case-insensitive).  Units are binary (C{1K} = 1024 bytes).
    Fractions (C{"1.5G"}) are rounded down to whole bytes.

    @raise ValueError: if C{text} is not such a size.
    """
    if isinstance(text, float):
        raise ValueError(f"invalid size {text!r}: expected {SIZE_SYNTAX}")
    return int(_scaled(text, _SIZE_UNITS, "size", SIZE_SYNTAX))


def parse_duration(text: str | float) -> float:
    """
    Parse a duration in seconds.

    Accepts a non-negative number of seconds, or a string holding a number
    with an optional unit: C{ms}, C{s}, C{m} (minutes), C{h}, C{d}, C{w}
    (case-insensitive), e.g. C{"30s"}, C{"5m"}, C{"1.5h"}, C{"5d"}.  A string
    without a unit means seconds.

    @raise ValueError: if C{text} is not such a duration.
    """
    seconds = float(_scaled(text, _DURATION_UNITS, "duration", DURATION_SYNTAX))
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: too large")
    return seconds


# -- the records --------------------------------------------------------------


@attrs.frozen
class DatabaseConfig:
    """The C{[database]} section (timeouts in seconds)."""

    dsn: str = attrs.field(repr=lambda dsn: "'***'" if dsn else "''")  # may hold a password
    pool_min: int
    pool_max: int
    connect_timeout: float
    statement_timeout: float
    schema: str

    @property
    def dsn_is_embedded(self) -> bool:
        """True if no DSN is configured: a3mail runs its embedded PostgreSQL."""
        return self.dsn == ""


@attrs.frozen
class TLSConfig:
    """
    The C{[tls]} section: PEM certificate (chain) and key files; C{generated}
    is True for the default pair under C{<data_dir>/tls}, which a3mail
    generates (self-signed) when missing.
    """

    certificate: Path
    private_key: Path
    generated: bool


@attrs.frozen
class LimitsConfig:
    """The C{[limits]} section (sizes in bytes)."""

    max_message_size: int
    max_recipients: int
    max_line_length: int


@attrs.frozen
class StoreConfig:
    """The C{[store]} section (sizes in bytes, durations in seconds)."""

    orphan_grace: float
    default_quota: int
    maildir_fsync: bool


@attrs.frozen
class AuthConfig:
    """The C{[auth]} section (durations in seconds)."""

    failure_delay: float
    allow_plaintext_loopback: bool


@attrs.frozen
class SmtpConfig:
    """The C{[smtp]} section (durations in seconds, sizes in bytes).

    C{static_dns} maps C{(record type, name)} to the record strings served
    instead of real DNS answers (tests, closed networks).
    """

    over_quota_reply: int
    dmarc_failure: str
    verify_inbound: bool
    dns_servers: tuple[str, ...]
    dns_timeout: float
    static_dns: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(hash=False)
    command_timeout: float
    data_timeout: float
    max_connections_per_ip: int
    max_errors: int
    max_data_line_length: int
    sent_copy: bool


@attrs.frozen
class Pop3Config:
    """The C{[pop3]} section (durations in seconds)."""

    idle_timeout: float
    max_errors: int


@attrs.frozen
class HttpConfig:
    """The C{[http]} section (sizes in bytes, durations in seconds).

    C{trusted_proxies} are networks whose C{X-Forwarded-For} is believed.
    """

    max_body: int
    request_timeout: float
    rate_limit_per_key: int
    rate_limit_per_ip: int
    rate_limit_window: float
    trusted_proxies: tuple[str, ...]


@attrs.frozen
class WebhooksConfig:
    """The C{[webhooks]} section (durations in seconds)."""

    allow_private_targets: bool
    timeout: float
    max_attempts: int
    poll_interval: float
    retention: float


@attrs.frozen
class OutboundConfig:
    """The C{[outbound]} section (durations in seconds).

    C{static_mx} maps a destination domain to C{host:port} strings used instead of
    the DNS (tests, closed networks); C{smarthost} ("" = none) is C{host:port}.
    """

    poll_interval: float
    concurrency: int
    connections_per_domain: int
    connect_timeout: float
    command_timeout: float
    dns_timeout: float
    lease_time: float
    retry_schedule: tuple[float, ...]
    max_queue_lifetime: float
    delay_warning: float
    tls: str
    verify_certificates: bool
    smarthost: str
    smarthost_tls: str
    smarthost_username: str
    smarthost_password: str = attrs.field(repr=False)
    smarthost_domains: Mapping[str, Mapping[str, str]] = attrs.field(hash=False, repr=False)
    static_mx: Mapping[str, tuple[str, ...]] = attrs.field(hash=False)


@attrs.frozen
class LoggingConfig:
    """The C{[logging]} section; C{json_file} is L{None} when not configured."""

    level: str
    json_file: Path | None


@attrs.frozen
class Config:
    """
    The whole configuration.

    @ivar listeners: enabled listeners only, name -> strports endpoint string,
        the file's values merged over L{LISTENER_DEFAULTS}.
    @ivar source: the file this was read from, or L{None} for built-in defaults.
    """

    hostname: str
    data_dir: Path
    database: DatabaseConfig
    tls: TLSConfig
    listeners: Mapping[str, str] = attrs.field(hash=False)
    limits: LimitsConfig
    store: StoreConfig
    auth: AuthConfig
    logging: LoggingConfig
    source: Path | None
    smtp: SmtpConfig
    pop3: Pop3Config
    http: HttpConfig
    webhooks: WebhooksConfig
    outbound: OutboundConfig

    @property
    def pgdata(self) -> Path:
        """Where the embedded PostgreSQL keeps its cluster."""
        return self.data_dir / "pgdata"


# -- the schema -----------------------------------------------------------------


class _Invalid(Exception):
    """A value is unusable; the message is the problem without the key."""


def _show(value: object) -> str:
    """Show a TOML value in an error message, in TOML-ish spelling, on one line."""
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= 80 else shown[:76] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return "a table" if isinstance(value, dict) else "an array"
    return str(value)


def _expected(what: str, value: object) -> _Invalid:
    return _Invalid(f"expected {what}, got {_show(value)}")


def _typed(
    kind: type | tuple[type, ...], what: str, parse: Callable[[Any], Any] | None = None
) -> Callable[[object], Any]:
    """A converter taking TOML values of C{kind} (never a bool for a number), then C{parse}."""

    def convert(value: object) -> Any:
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise _expected(what, value)
        try:
            return value if parse is None else parse(value)
        except ValueError:
            raise _expected(what, value) from None

    return convert


def _matching(pattern: str) -> Callable[[str], str]:
    """A parser accepting strings that match C{pattern}."""

    def parse(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise ValueError(text)
        return text

    return parse


_to_str = _typed(str, "a string")
_to_int = _typed(int, "an integer")
_to_bool = _typed(bool, "true or false")
_to_size = _typed((int, str), SIZE_SYNTAX, parse_size)
_to_duration = _typed((int, float, str), DURATION_SYNTAX, parse_duration)
_to_identifier = _typed(str, "a lower-case SQL identifier", _matching(r"[a-z_][a-z0-9_]{0,62}"))
_to_level = _typed(str, "one of " + ", ".join(LOG_LEVELS), _matching("|".join(LOG_LEVELS)))
_to_over_quota_reply = _typed(str, '"452" or "552"', lambda text: int(_matching("452|552")(text)))
_to_dmarc_failure = _typed(str, '"tag", "junk" or "reject"', _matching("tag|junk|reject"))


def _dns_servers(items: list[object]) -> tuple[str, ...]:
    """DNS server addresses: "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53"."""
    address = r"(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9a-fA-F:.]+\](:\d{1,5})?|[0-9a-fA-F:]+)"
    if not all(isinstance(item, str) for item in items):
        raise ValueError(items)
    return tuple(_matching(address)(str(item)) for item in items)


def _static_dns(table: dict[str, object]) -> Mapping[tuple[str, str], tuple[str, ...]]:
    """C{{"TXT example.com" = ["v=spf1 -all"]}} -> C{{("TXT", "example.com"): ("v=spf1 -all",)}}."""
    records: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, values in table.items():
        kind, _, name = key.partition(" ")
        if not re.fullmatch(r"[A-Z]{1,10}", kind) or not name.strip() or " " in name.strip():
            raise ValueError(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(key)
        records[(kind, name.strip().lower().rstrip("."))] = tuple(values)
    return types.MappingProxyType(records)


_to_dns_servers = _typed(
    list, 'a list of addresses like "192.0.2.1" or "192.0.2.1:53"', _dns_servers
)
_to_static_dns = _typed(dict, 'a table of "TYPE name" = ["record", ...]', _static_dns)


def _durations(items: list[object]) -> tuple[float, ...]:
    """A non-empty list of durations > 0, e.g. ["5m", "1h"]."""
    values = tuple(parse_duration(item) for item in items)  # type: ignore[arg-type]
    if not values or min(values) <= 0:
        raise ValueError(items)
    return values


def _static_mx(table: dict[str, object]) -> Mapping[str, tuple[str, ...]]:
    """C{{"example.net" = ["127.0.0.1:2526"]}} -> domain (lower case) -> host:port strings."""
    routes: dict[str, tuple[str, ...]] = {}
    for domain, targets in table.items():
        if not isinstance(targets, list) or not targets:
            raise ValueError(domain)
        if not all(isinstance(t, str) and t.strip() for t in targets):
            raise ValueError(domain)
        routes[domain.strip().lower().rstrip(".")] = tuple(str(t).strip() for t in targets)
    return types.MappingProxyType(routes)


_SMARTHOST_FIELDS = {"host": "", "tls": "starttls", "username": "", "password": ""}


def _smarthost_domains(table: dict[str, object]) -> Mapping[str, Mapping[str, str]]:
    """C{{"example.org" = {host = "relay:587", tls = "tls", username = "u", password = "p"}}}
    -> domain (lower case) -> the four fields (host required)."""
    routes: dict[str, Mapping[str, str]] = {}
    for domain, route in table.items():
        if not isinstance(route, dict) or set(route) - set(_SMARTHOST_FIELDS):
            raise ValueError(domain)
        if not all(isinstance(v, str) for v in route.values()) or not route.get("host"):
            raise ValueError(domain)
        if route.get("tls", "starttls") not in ("starttls", "require-starttls", "tls", "none"):
            raise ValueError(domain)
        fields = {**_SMARTHOST_FIELDS, **route}
        routes[domain.strip().lower().rstrip(".")] = types.MappingProxyType(fields)
    return types.MappingProxyType(routes)


_to_smarthost_domains = _typed(
    dict,
    'a table of "domain" = { host = "relay:587", tls = "...", username = "...", password = "..." }',
    _smarthost_domains,
)
_to_durations = _typed(list, 'a non-empty list of durations like ["5m", "1h"]', _durations)
_to_static_mx = _typed(dict, 'a table of "domain" = ["host:port", ...]', _static_mx)
_to_tls_mode = _typed(
    str, '"starttls", "require-starttls" or "none"', _matching("starttls|require-starttls|none")
)
_to_smarthost_tls = _typed(
    str,
    '"starttls", "require-starttls", "tls" or "none"',
    _matching("starttls|require-starttls|tls|none"),
)


def _networks(items: list[object]) -> tuple[str, ...]:
    """Addresses or networks: "192.0.2.1", "10.0.0.0/8", "2001:db8::/32"."""
    if not all(isinstance(item, str) for item in items):
        raise ValueError(items)
    return tuple(str(ipaddress.ip_network(str(item), strict=False)) for item in items)


_to_networks = _typed(list, 'a list of addresses or networks like "10.0.0.0/8"', _networks)


def _resolve(text: str) -> Path:
    """An absolute path: C{~} expanded, relative to the current directory."""
    return Path(os.path.abspath(os.path.expanduser(text)))


def _required_path(text: str) -> Path:
    if not text:
        raise ValueError(text)
    return _resolve(text)


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")


def _hostname(text: str) -> str:
    """The host name, lower-cased; "" means the machine's fully qualified name."""
    if not text:
        return socket.getfqdn().lower()
    if not _HOSTNAME.fullmatch(text.lower()):
        raise ValueError(text)
    return text.lower()


_to_path = _typed(str, "a non-empty path", _required_path)
_to_optional_path = _typed(str, "a path", lambda text: _resolve(text) if text else None)
_to_hostname = _typed(str, "a host name (letters, digits, hyphens and dots)", _hostname)


@attrs.frozen
class _Key:
    """
    One key: its converter, its default as written in TOML, and range checks
    (C{minimum}: the least value allowed; C{positive}: the value must be > 0).
    """

    convert: Callable[[object], Any]
    default: object
    minimum: int | None = None
    positive: bool = False


_TOP_KEYS: dict[str, _Key] = {
    "hostname": _Key(_to_hostname, ""),
    "data_dir": _Key(_to_path, "./a3mail-data"),
}

_SECTION_KEYS: dict[str, dict[str, _Key]] = {
    "database": {
        "dsn": _Key(_to_str, ""),
        "pool_min": _Key(_to_int, 2, minimum=0),
        "pool_max": _Key(_to_int, 10, minimum=1),
        "connect_timeout": _Key(_to_duration, "5s", positive=True),
        "statement_timeout": _Key(_to_duration, "30s"),
        "schema": _Key(_to_identifier, "public"),
    },
    "tls": {
        "certificate": _Key(_to_optional_path, ""),
        "private_key": _Key(_to_optional_path, ""),
    },
    "limits": {
        "max_message_size": _Key(_to_size, "50M", positive=True),
        "max_recipients": _Key(_to_int, 100, minimum=1),
        "max_line_length": _Key(_to_int, 4096, minimum=512),
    },
    "store": {
        "orphan_grace": _Key(_to_duration, "15m"),
        "default_quota": _Key(_to_size, "0"),
        "maildir_fsync": _Key(_to_bool, True),
    },
    "auth": {
        "failure_delay": _Key(_to_duration, "1s"),
        "allow_plaintext_loopback": _Key(_to_bool, False),
    },
    "smtp": {
        "over_quota_reply": _Key(_to_over_quota_reply, "452"),
        "dmarc_failure": _Key(_to_dmarc_failure, "tag"),
        "verify_inbound": _Key(_to_bool, True),
        "dns_servers": _Key(_to_dns_servers, []),
        "dns_timeout": _Key(_to_duration, "10s", positive=True),
        "static_dns": _Key(_to_static_dns, {}),
        "command_timeout": _Key(_to_duration, "5m", positive=True),
        "data_timeout": _Key(_to_duration, "5m", positive=True),
        "max_connections_per_ip": _Key(_to_int, 20, minimum=1),
        "max_errors": _Key(_to_int, 10, minimum=1),
        "max_data_line_length": _Key(_to_int, 998, minimum=998),
        "sent_copy": _Key(_to_bool, True),
    },
    "pop3": {
        "idle_timeout": _Key(_to_duration, "10m", minimum=600),
        "max_errors": _Key(_to_int, 10, minimum=1),
    },
    "http": {
        "max_body": _Key(_to_size, "1M", positive=True),
        "request_timeout": _Key(_to_duration, "60s", positive=True),
        "rate_limit_per_key": _Key(_to_int, 1000, minimum=0),
        "rate_limit_per_ip": _Key(_to_int, 100, minimum=0),
        "rate_limit_window": _Key(_to_duration, "1h", minimum=1),
        "trusted_proxies": _Key(_to_networks, []),
    },
    "webhooks": {
        "allow_private_targets": _Key(_to_bool, False),
        "timeout": _Key(_to_duration, "10s", positive=True),
        "max_attempts": _Key(_to_int, 8, minimum=1),
        "poll_interval": _Key(_to_duration, "30s", minimum=1),
        "retention": _Key(_to_duration, "30d", minimum=3600),
    },
    "outbound": {
        "poll_interval": _Key(_to_duration, "10s", minimum=1),
        "concurrency": _Key(_to_int, 20, minimum=1),
        "connections_per_domain": _Key(_to_int, 5, minimum=1),
        "connect_timeout": _Key(_to_duration, "30s", positive=True),
        "command_timeout": _Key(_to_duration, "5m", positive=True),
        "dns_timeout": _Key(_to_duration, "30s", positive=True),
        "lease_time": _Key(_to_duration, "15m", minimum=60),
        "retry_schedule": _Key(_to_durations, ["5m", "10m", "20m", "40m", "80m", "160m", "4h"]),
        "max_queue_lifetime": _Key(_to_duration, "5d"),
        "delay_warning": _Key(_to_duration, "4h"),
        "tls": _Key(_to_tls_mode, "starttls"),
        "verify_certificates": _Key(_to_bool, False),
        "smarthost": _Key(_to_str, ""),
        "smarthost_tls": _Key(_to_smarthost_tls, "starttls"),
        "smarthost_username": _Key(_to_str, ""),
        "smarthost_password": _Key(_to_str, ""),
        "smarthost_domains": _Key(_to_smarthost_domains, {}),
        "static_mx": _Key(_to_static_mx, {}),
    },
    "logging": {
        "level": _Key(_to_level, "info"),
        "json_file": _Key(_to_optional_path, ""),
    },
}


def _unknown(key: str, name: str, known: Mapping[str, object]) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return ConfigError(key, f"unknown key{hint}")


def _convert(key: str, spec: _Key, value: object) -> Any:
    try:
        converted = spec.convert(value)
    except _Invalid as e:
        raise ConfigError(key, str(e)) from None
    if spec.minimum is not None and converted < spec.minimum:
        raise ConfigError(key, f"must be at least {spec.minimum}, got {converted}")
    if spec.positive and converted <= 0:
        raise ConfigError(key, f"must be greater than 0, got {converted}")
    return converted


def _table(key: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table, got {_show(value)}")
    return value


def _read_keys(
    prefix: str, table: Mapping[str, object], keys: Mapping[str, _Key]
) -> dict[str, Any]:
    """Validate one table against its schema; defaults fill the missing keys."""
    for name in table:
        if name not in keys:
            raise _unknown(prefix + name, name, keys)
    return {
        name: _convert(prefix + name, spec, table.get(name, spec.default))
        for name, spec in keys.items()
    }


# -- listeners ------------------------------------------------------------------


def check_endpoint(description: str) -> None:
    """
    Check that a strports server endpoint string parses, without listening: it
    is built (and TCP/SSL ones "listened" to, for the port range check) on a
    L{MemoryReactor}.  C{ssl:} endpoints read their certificate files here.

    @raise ValueError: with the reason, if the string is unusable.
    """
    reactor = MemoryReactor()
    try:
        endpoint = serverFromString(reactor, description)
    except Exception as e:
        raise ValueError(str(e) or type(e).__name__) from None
    if isinstance(endpoint, TCP4ServerEndpoint | TCP6ServerEndpoint | SSL4ServerEndpoint):
        endpoint.listen(Factory.forProtocol(Protocol))
        for port, *_ in reactor.tcpServers + reactor.sslServers:
            if not 0 <= port <= 65535:
                raise ValueError(f"port {port} is not between 0 and 65535")


def _read_listeners(table: Mapping[str, object]) -> Mapping[str, str]:
    merged = dict(LISTENER_DEFAULTS)
    for name, value in table.items():
        key = f"listeners.{name}"
        if name not in LISTENER_DEFAULTS:
            raise _unknown(key, name, LISTENER_DEFAULTS)
        merged[name] = _convert(key, _Key(_to_str, ""), value)
    enabled = {name: value for name, value in merged.items() if value}
    for name, description in enabled.items():
        try:
            check_endpoint(description)
        except ValueError as e:
            raise ConfigError(
                f"listeners.{name}", f"cannot parse endpoint {_show(description)}: {e}"
            ) from None
    return types.MappingProxyType(enabled)


# -- loading --------------------------------------------------------------------


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as e:
        reason = f"[Errno {e.errno}] {e.strerror}" if e.strerror else str(e)
        raise ConfigError(None, f"{path}: cannot read file: {reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(None, f"{path}: not UTF-8 text: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = f"invalid TOML: {e}"
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where is not None:
            message = f"line {where[1]}: {message[: where.start()]} (column {where[2]})"
        raise ConfigError(None, f"{path}: {message}") from None


def _merge(base: dict[str, Any], overrides: Mapping[str, Any], prefix: str = "") -> None:
    """Set C{overrides} in C{base}: nested mappings, or dotted keys (C{"a.b"})."""
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            _merge(base, value, f"{prefix}{key}.")
            continue
        *parents, name = f"{prefix}{key}".split(".")
        table = base
        for parent in parents:
            table = table.setdefault(parent, {})
            if not isinstance(table, dict):
                raise ConfigError(parent, f"expected a table, got {_show(table)}")
        table[name] = value


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """
    Read and validate the configuration.

    @param path: the TOML file, or L{None} to use the built-in defaults.
    @param data_dir: if given (the command line's C{--data-dir}), replaces the
        file's C{data_dir}.
    @param overrides: values merged over the file's before validation, shaped
        like the file (nested mappings) or with dotted keys
        (C{{"database.pool_max": 20}}).
    @raise ConfigError: if the file cannot be read or any value is invalid.
    """
    source = None if path is None else _resolve(os.fspath(path))
    raw: dict[str, Any] = {} if source is None else _read_file(source)
    if overrides:
        _merge(raw, overrides)
    if data_dir is not None:
        raw["data_dir"] = os.fspath(data_dir)

    known: dict[str, object] = {**_TOP_KEYS, **_SECTION_KEYS, "listeners": None}
    for name in raw:
        if name not in known:
            raise _unknown(name, name, known)
    top = _read_keys("", {k: v for k, v in raw.items() if k in _TOP_KEYS}, _TOP_KEYS)
    sections = {
        name: _read_keys(f"{name}.", _table(name, raw.get(name, {})), keys)
        for name, keys in _SECTION_KEYS.items()
    }
    listeners = _read_listeners(_table("listeners", raw.get("listeners", {})))

    database = DatabaseConfig(**sections["database"])
    if database.pool_min > database.pool_max:
        raise ConfigError(
            "database.pool_min",
            f"must not exceed database.pool_max ({database.pool_max}), got {database.pool_min}",
        )
    return Config(
        hostname=top["hostname"],
        data_dir=top["data_dir"],
        database=database,
        tls=_build_tls(sections["tls"], top["data_dir"]),
        listeners=listeners,
        limits=LimitsConfig(**sections["limits"]),
        store=StoreConfig(**sections["store"]),
        auth=AuthConfig(**sections["auth"]),
        logging=LoggingConfig(**sections["logging"]),
        source=source,
        smtp=SmtpConfig(**sections["smtp"]),
        pop3=Pop3Config(**sections["pop3"]),
        http=HttpConfig(**sections["http"]),
        webhooks=WebhooksConfig(**sections["webhooks"]),
        outbound=OutboundConfig(**sections["outbound"]),
    )


def _build_tls(values: Mapping[str, Path | None], data_dir: Path) -> TLSConfig:
    certificate, private_key = values["certificate"], values["private_key"]
    if certificate is None and private_key is None:
        return TLSConfig(
            certificate=data_dir / "tls" / "cert.pem",
            private_key=data_dir / "tls" / "key.pem",
            generated=True,
        )
    if certificate is None:
        raise ConfigError("tls.certificate", "must be set when tls.private_key is set")
    if private_key is None:
        raise ConfigError("tls.private_key", "must be set when tls.certificate is set")
    return TLSConfig(certificate=certificate, private_key=private_key, generated=False)
