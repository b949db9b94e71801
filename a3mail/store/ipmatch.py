"""Matching client addresses against many blocked networks, in memory and fast.

:class:`BlockMatcher` keeps the blocked networks grouped by (IP version, prefix length): for
each group a dict from the network's leading bits (an int) to its expiry.  Matching one
address costs one dict look-up per distinct prefix length in use (at most 33 for IPv4 and
129 for IPv6, usually two or three), whatever the number of entries.  IPv4-mapped IPv6
addresses (``::ffff:192.0.2.1``, seen on dual-stack listeners) match as IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_network(text: str) -> Network:
    """An address (``192.0.2.7``, ``2001:db8::1``) or CIDR network (``10.0.0.0/8``).

    A single address becomes a /32 or /128 network; IPv4-mapped IPv6 addresses become
    IPv4.  Raises ValueError for anything else, including a network with host bits set
    (``10.0.0.1/8``), which is refused rather than silently widened.
    """
    text = text.strip()
    if not text or len(text) > 100:
        raise ValueError("not an IP address or CIDR network")
    network = ipaddress.ip_network(text, strict=True)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((int(mapped), network.prefixlen - 96))
    return network


def parse_address(text: str) -> Address | None:
    """A peer address as matched (IPv4-mapped IPv6 as IPv4), None if it is not one."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class BlockMatcher:
    """Blocked networks with their expiry (epoch seconds; None = permanent)."""

    def __init__(self) -> None:
        # (version, prefix length) -> {network bits: expires}
        self._groups: dict[tuple[int, int], dict[int, float | None]] = {}

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def replace(self, entries: Iterable[tuple[Network, float | None]]) -> None:
        """Swap in a whole new set of entries (a refresh from the database)."""
        groups: dict[tuple[int, int], dict[int, float | None]] = {}
        for network, expires in entries:
            key, bits = _key(network)
            groups.setdefault(key, {})[bits] = expires
        self._groups = groups

    def add(self, network: Network, expires: float | None) -> None:
        """Block *network* until *expires*."""
        key, bits = _key(network)
        self._groups.setdefault(key, {})[bits] = expires

    def remove(self, network: Network) -> None:
        """Stop blocking *network* (exactly that entry)."""
        key, bits = _key(network)
        group = self._groups.get(key)
        if group is not None:
            group.pop(bits, None)
            if not group:
                del self._groups[key]

    def blocks(self, text: str, now: float) -> bool:
        """True if the address *text* lies in a network blocked at time *now*."""
        address = parse_address(text)
        if address is None:
            return False
        value = int(address)
        width = address.max_prefixlen
        for (version, prefix), group in self._groups.items():
            if version != address.version:
                continue
            expires = group.get(value >> (width - prefix), 0.0)
            if expires is None or expires > now:
                return True
        return False


def _key(network: Network) -> tuple[tuple[int, int], int]:
    bits = int(network.network_address) >> (network.max_prefixlen - network.prefixlen)
    return (network.version, network.prefixlen), bits
