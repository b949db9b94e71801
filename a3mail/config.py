"""The a3mail configuration: one TOML file read into frozen attrs records.

Every key is described once, in the schema tables (C{_TOP_KEYS}, C{_SECTION_KEYS},
L{LISTENER_DEFAULTS}); adding a key is one schema line, one record field, and its
documentation in etc/a3mail.toml and docs/configuration.md (a test checks both).
The section records live in L{a3mail.config_records} and the value converters in
L{a3mail.config_values}; both are re-exported here.  Relative paths are resolved against
the working directory at load time.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping
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

from a3mail.config_records import (
    AuthConfig,
    Config,
    DatabaseConfig,
    FreemailConfig,
    HttpConfig,
    ImapConfig,
    LimitsConfig,
    LoggingConfig,
    ManholeConfig,
    OutboundConfig,
    Pop3Config,
    SecurityConfig,
    ServerConfig,
    SmtpConfig,
    StoreConfig,
    TLSConfig,
    WebhooksConfig,
)
from a3mail.config_values import (  # noqa: F401 - some re-exported
    DURATION_SYNTAX,
    LOG_LEVELS,
    SIZE_SYNTAX,
    _Invalid,
    _resolve,
    _show,
    _to_bool,
    _to_delimiters,
    _to_dmarc_failure,
    _to_dns_servers,
    _to_domain_names,
    _to_duration,
    _to_durations,
    _to_hostname,
    _to_identifier,
    _to_int,
    _to_level,
    _to_networks,
    _to_optional_path,
    _to_over_quota_reply,
    _to_path,
    _to_restart_mode,
    _to_samesite,
    _to_size,
    _to_smarthost_domains,
    _to_smarthost_tls,
    _to_static_dns,
    _to_static_mx,
    _to_str,
    _to_tls_mode,
    parse_duration,
    parse_size,
)

#: Listener name -> default strports endpoint string.  The keys are exactly
#: the names allowed in the ``[listeners]`` table; a protocol front registers
#: its listener by adding a line here.
LISTENER_DEFAULTS: dict[str, str] = {
    "smtp": "tcp:2525:interface=127.0.0.1",
    "submission": "tcp:5870:interface=127.0.0.1",
    "submissions": "tcp:4650:interface=127.0.0.1",
    "pop3": "tcp:1110:interface=127.0.0.1",
    "pop3s": "tcp:9950:interface=127.0.0.1",
    "imap": "tcp:1143:interface=127.0.0.1",
    "imaps": "tcp:9930:interface=127.0.0.1",
    "http": "tcp:8080:interface=127.0.0.1",
    "freemail": "tcp:8081:interface=127.0.0.1",
    "manhole": "",  # off by default; when on, loopback only (see a3mail.manhole)
}


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


# -- the schema -----------------------------------------------------------------


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
        "recipient_delimiter": _Key(_to_delimiters, "+"),
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
    "imap": {
        "idle_timeout": _Key(_to_duration, "30m", minimum=1800),
        "login_timeout": _Key(_to_duration, "60s", positive=True),
        "max_line": _Key(_to_size, "64K", minimum=1024),
        "max_literal": _Key(_to_size, "64K", minimum=1024),
        "max_connections_per_ip": _Key(_to_int, 20, minimum=1),
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
    "server": {
        "drain_timeout": _Key(_to_duration, "30s"),
        "restart": _Key(_to_restart_mode, "exec"),
    },
    "manhole": {
        "authorized_keys": _Key(_to_optional_path, ""),
    },
    "security": {
        "auto_block_failures": _Key(_to_int, 10, minimum=0),
        "auto_block_window": _Key(_to_duration, "10m", positive=True),
        "auto_block_duration": _Key(_to_duration, "1h", positive=True),
        "exempt_loopback": _Key(_to_bool, True),
        "exempt_networks": _Key(_to_networks, []),
        "refresh_interval": _Key(_to_duration, "30s", minimum=1),
    },
    "freemail": {
        "admin_token": _Key(_to_str, ""),
        "admin_name": _Key(_to_str, "admin"),
        "admin_password": _Key(_to_str, ""),
        "session_secret": _Key(_to_str, ""),
        "session_lifetime": _Key(_to_duration, "7d", minimum=60),
        "guest_enabled": _Key(_to_bool, False),
        "guest_password": _Key(_to_str, ""),
        "mailbox_limit": _Key(_to_int, 10, minimum=0),
        "mailbox_lifetime": _Key(_to_duration, "0"),
        "domains": _Key(_to_domain_names, []),
        "cookie_name": _Key(_to_str, "iding-token"),
        "cookie_secure": _Key(_to_bool, False),
        "cookie_samesite": _Key(_to_samesite, "Strict"),
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
        imap=ImapConfig(**sections["imap"]),
        http=HttpConfig(**sections["http"]),
        webhooks=WebhooksConfig(**sections["webhooks"]),
        outbound=OutboundConfig(**sections["outbound"]),
        security=SecurityConfig(**sections["security"]),
        server=ServerConfig(**sections["server"]),
        manhole=ManholeConfig(**sections["manhole"]),
        freemail=FreemailConfig(**sections["freemail"]),
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
