"""Configuration values: sizes, durations and the typed converters of every config key.

A converter turns a TOML value into the value a3mail uses, or raises L{_Invalid} with the
problem (the caller in L{a3mail.config} adds the key's name).
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import socket
import types
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

#: Levels accepted by ``logging.level``.
LOG_LEVELS = ("debug", "info", "warn", "error")


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
_to_delimiters = _typed(
    str, 'up to 4 of the characters "+-_.=" (or "" for none)', _matching(r"[+\-_.=]{0,4}")
)


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
_to_restart_mode = _typed(str, '"exec" or "exit"', _matching("exec|exit"))
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


def _domain_names(items: list[object]) -> tuple[str, ...]:
    """Domain names, lower-cased, each once, in order."""
    if not all(isinstance(item, str) and _HOSTNAME.fullmatch(item.lower()) for item in items):
        raise ValueError(items)
    return tuple(dict.fromkeys(str(item).lower() for item in items))


_to_domain_names = _typed(list, 'a list of domain names like ["mail.example"]', _domain_names)
_to_samesite = _typed(str, '"Strict", "Lax" or "None"', _matching("Strict|Lax|None"))
