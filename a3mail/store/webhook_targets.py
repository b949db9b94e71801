"""Which URLs a webhook may point at, and which addresses a3mail refuses to connect to.

A webhook makes a3mail send HTTP requests to a URL someone typed in, so it must not become
a way into the server's own network (SSRF).  :func:`check_url` validates a URL when the
webhook is created (scheme, length, no user:password, and literal IP addresses);
:func:`address_refusal` is the policy applied again at delivery time to every address the
host name resolves to, so that a name pointing at a private address (or re-pointed there
later, DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class TargetRefused(ValueError):
    """A webhook target a3mail will not send to; the message says why (safe to show)."""


def parse_address(host: str) -> IPAddress | None:
    """*host* as an IP address (brackets and an IPv6 zone removed), or None for a name."""
    text = host.strip("[]").partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a3mail refuses to connect to *address* (e.g. ``"loopback"``), or None if it is a
    public address.  IPv4 addresses inside IPv6 (mapped, NAT64, 6to4) are judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _CGNAT, "shared (CGNAT)"),
        (address in _UNIQUE_LOCAL, "unique local"),
        (address.is_private, "private"),
        (address.is_reserved or not address.is_global, "not globally routable"),
    ]
    return next((reason for refused, reason in checks if refused), None)


def check_url(url: object, *, allow_private: bool = False) -> str:
    """Return *url* (stripped) if a webhook may use it, else raise :class:`TargetRefused`.

    http or https only, at most :data:`MAX_URL_LENGTH` characters, a host, no
    ``user:password@``, no fragment, a valid port; a literal IP address (and the name
    ``localhost``) must be public unless *allow_private*.
    """
    if not isinstance(url, str):
        raise TargetRefused("url must be a string")
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url must be 1 to {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise TargetRefused("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise TargetRefused("url must be an http or https URL")
    if "@" in parts.netloc:
        raise TargetRefused("url must not contain a user name or password")
    if parts.fragment or url.endswith("#"):
        raise TargetRefused("url must not contain a fragment")
    if port == 0:
        raise TargetRefused("url has an invalid port")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("url must name a host")
    address = parse_address(host)
    if address is None:
        _check_host_name(host)
        if not allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise TargetRefused("url points at a loopback address")
    elif not allow_private:
        reason = address_refusal(address)
        if reason is not None:
            raise TargetRefused(f"url points at a {reason} address")
    return url


def _check_host_name(host: str) -> None:
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise TargetRefused("url has an invalid host name") from None
    labels = ascii_host.lower().split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetRefused("url has an invalid host name")
