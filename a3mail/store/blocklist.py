"""The IP blocklist (table ``ip_blocks``) and the automatic block after failed logins.

Every change is announced on the event bus (``ip.blocked``, ``ip.unblocked``) when it
commits, so every a3mail process updates its in-memory :class:`BlockMatcher` within a
moment; the security service also reloads the whole list periodically.  ``matcher`` is this
process's view, read by the connection gate on every accepted connection; ``auto_block`` is
the failed-login rule in force (None: no automatic blocks), set from the ``[security]``
configuration by the security service.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from typing import Any

import attrs

from a3mail.store.context import StoreContext, fetchone
from a3mail.store.db import deferred
from a3mail.store.ipmatch import BlockMatcher, Network, parse_address, parse_network
from a3mail.store.records import NotFound

IP_BLOCKED = "ip.blocked"
IP_UNBLOCKED = "ip.unblocked"
AUTO_BLOCK_EVENT = "ip.auto_block"  # the audit event of an automatic block
AUTH_FAILURE = "auth.failure"  # the audit event a3mail.auth.guard records per failed login
AUTO_BLOCK_ACTOR = "auto-block"


@attrs.frozen
class IpBlock:
    """One blocked address or network."""

    id: int
    network: str  # "192.0.2.7/32", "2001:db8::/32"
    reason: str
    created_at: datetime
    expires_at: datetime | None  # None: permanent
    created_by: str | None
    automatic: bool

    @property
    def permanent(self) -> bool:
        """True if the block never expires."""
        return self.expires_at is None

    @property
    def address(self) -> str:
        """The network as shown: a single address without its /32 or /128."""
        network = ipaddress.ip_network(self.network)
        if network.prefixlen == network.max_prefixlen:
            return str(network.network_address)
        return str(network)


@attrs.frozen
class AutoBlockRule:
    """Block an address for *duration* seconds after *failures* failed logins from it
    within *window* seconds (counted over every protocol), unless it is *exempt*."""

    failures: int
    window: float
    duration: float
    exempt: tuple[Network, ...] = ()

    def exempts(self, ip: str) -> bool:
        """True if failures from *ip* never lead to a block."""
        address = parse_address(ip)
        if address is None:
            return True
        return any(address in network for network in self.exempt)


def _block(row: dict[str, Any]) -> IpBlock:
    return IpBlock(
        id=int(row["id"]),
        network=str(row["network"]),
        reason=row["reason"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        created_by=row["created_by"],
        automatic=bool(row["automatic"]),
    )


_ACTIVE = "(expires_at IS NULL OR expires_at > now())"
_UPSERT = (
    "INSERT INTO ip_blocks AS b (network, reason, expires_at, created_by, automatic)"
    " VALUES (%(network)s, %(reason)s,"
    " CASE WHEN %(duration)s::float8 IS NULL THEN NULL"
    " ELSE now() + make_interval(secs => %(duration)s::float8) END,"
    " %(created_by)s, %(automatic)s)"
    " ON CONFLICT (network) DO UPDATE SET reason = EXCLUDED.reason,"
    " expires_at = EXCLUDED.expires_at, created_by = EXCLUDED.created_by,"
    " automatic = EXCLUDED.automatic, created_at = now()"
)
# xmax = 0: the row was inserted, not updated.
_RETURNING = " RETURNING *, (xmax = 0) AS inserted"
# The automatic rule never shortens or replaces a block in force.
_ONLY_IF_EXPIRED = " WHERE b.expires_at IS NOT NULL AND b.expires_at <= now()"
_COUNT_FAILURES = (
    "SELECT count(*) AS n FROM audit_log WHERE ip = %(ip)s AND event_type = %(failure)s"
    " AND at > greatest(now() - make_interval(secs => %(window)s::float8),"
    " coalesce((SELECT max(at) FROM audit_log WHERE ip = %(ip)s AND event_type = %(auto)s),"
    " '-infinity'))"
)


class Blocklist:
    """Blocked addresses and networks, shared by every process through PostgreSQL."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.matcher = BlockMatcher()
        self.auto_block: AutoBlockRule | None = None

    @deferred
    async def block(
        self,
        network: str,
        *,
        reason: str = "",
        duration: float | None = None,
        created_by: str | None = None,
    ) -> tuple[IpBlock, bool]:
        """Block an address or CIDR network for *duration* seconds (None: permanently).

        Blocking a network already listed replaces its reason and expiry.  Returns the entry
        and whether it is new.  Raises ValueError for a malformed network or duration.
        """
        parsed = parse_network(network)
        if duration is not None and not duration > 0:
            raise ValueError("duration must be positive")
        params = {
            "network": str(parsed),
            "reason": reason[:500],
            "duration": duration,
            "created_by": created_by,
            "automatic": False,
        }
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(conn, _UPSERT + _RETURNING, params)
            entry = _block(row)
            await self._announce_block(conn, entry)
        self._apply_block(entry)
        return entry, bool(row["inserted"])

    @deferred
    async def unblock(self, network: str) -> IpBlock:
        """Remove the entry for exactly *network* (NotFound if none)."""
        parsed = parse_network(network)
        async with self.ctx.db.transaction() as conn:
            row = await fetchone(
                conn, "DELETE FROM ip_blocks WHERE network = %s RETURNING *", (str(parsed),)
            )
            if row is None:
                raise NotFound(f"{parsed} is not blocked")
            entry = _block(row)
            await self.ctx.publish(conn, IP_UNBLOCKED, network=entry.network)
        self.matcher.remove(parsed)
        return entry

    @deferred
    async def get(self, network: str) -> IpBlock | None:
        """The entry for exactly *network*, if listed (expired or not)."""
        row = await self.ctx.db.fetchone(
            "SELECT * FROM ip_blocks WHERE network = %s", (str(parse_network(network)),)
        )
        return None if row is None else _block(row)

    @deferred
    async def entries(
        self, *, limit: int = 100, offset: int = 0, include_expired: bool = False
    ) -> tuple[list[IpBlock], int]:
        """A page of entries, newest first, and how many there are."""
        where = "" if include_expired else f" WHERE {_ACTIVE}"
        rows = await self.ctx.db.fetchall(
            f"SELECT *, count(*) OVER () AS total FROM ip_blocks{where}"
            " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
            (limit, offset),
        )
        total = int(rows[0]["total"]) if rows else 0
        if not rows and offset:
            total = await self.count()
        return [_block(r) for r in rows], total

    @deferred
    async def count(self) -> int:
        """How many entries block something now."""
        row = await self.ctx.db.fetchone(f"SELECT count(*) AS n FROM ip_blocks WHERE {_ACTIVE}")
        return int(row["n"]) if row else 0

    @deferred
    async def blocking(self, ip: str) -> list[IpBlock]:
        """The entries in force that cover the address *ip*."""
        address = parse_address(ip)
        if address is None:
            return []
        rows = await self.ctx.db.fetchall(
            f"SELECT * FROM ip_blocks WHERE network >>= %s::inet AND {_ACTIVE}",
            (str(address),),
        )
        return [_block(r) for r in rows]

    @deferred
    async def refresh(self) -> int:
        """Reload this process's matcher with every entry in force; returns how many."""
        rows = await self.ctx.db.fetchall(
            "SELECT network, extract(epoch FROM expires_at) AS expires"
            f" FROM ip_blocks WHERE {_ACTIVE}"
        )
        self.matcher.replace(
            (
                ipaddress.ip_network(str(r["network"])),
                None if r["expires"] is None else float(r["expires"]),
            )
            for r in rows
        )
        return len(rows)

    @deferred
    async def prune(self) -> int:
        """Delete entries that expired; returns how many."""
        return await self.ctx.db.execute(
            "DELETE FROM ip_blocks WHERE expires_at IS NOT NULL AND expires_at <= now()"
        )

    @deferred
    async def note_failure(self, ip: str | None) -> IpBlock | None:
        """Apply the automatic rule after a failed login from *ip* (already in the audit log):
        with enough failures in the window, block the address, record ``ip.auto_block`` in
        the audit log and announce it.  Returns the new block, if one was made."""
        rule = self.auto_block
        if rule is None or rule.failures <= 0 or ip is None or rule.exempts(ip):
            return None
        address = parse_address(ip)
        if address is None:
            return None
        async with self.ctx.db.transaction() as conn:
            counted = await fetchone(
                conn,
                _COUNT_FAILURES,
                {
                    "ip": ip,
                    "failure": AUTH_FAILURE,
                    "auto": AUTO_BLOCK_EVENT,
                    "window": rule.window,
                },
            )
            failures = int(counted["n"])
            if failures < rule.failures:
                return None
            network = parse_network(str(address))
            reason = f"{failures} failed logins within {int(rule.window)} s"
            row = await fetchone(
                conn,
                _UPSERT + _ONLY_IF_EXPIRED + _RETURNING,
                {
                    "network": str(network),
                    "reason": reason,
                    "duration": rule.duration,
                    "created_by": AUTO_BLOCK_ACTOR,
                    "automatic": True,
                },
            )
            if row is None:  # blocked already (by another process, or by hand)
                return None
            entry = _block(row)
            await conn.execute(
                "INSERT INTO audit_log (event_type, severity, actor, ip, target, success, details)"
                " VALUES (%s, 'warning', %s, %s, %s, true, %s)",
                (
                    AUTO_BLOCK_EVENT,
                    AUTO_BLOCK_ACTOR,
                    ip,
                    entry.network,
                    _json(
                        {
                            "failures": failures,
                            "window": rule.window,
                            "duration": rule.duration,
                            "expires_at": entry.expires_at,
                        }
                    ),
                ),
            )
            await self._announce_block(conn, entry)
        self._apply_block(entry)
        return entry

    async def _announce_block(self, conn: Any, entry: IpBlock) -> None:
        expires = None if entry.expires_at is None else entry.expires_at.timestamp()
        await self.ctx.publish(conn, IP_BLOCKED, network=entry.network, expires=expires)

    def _apply_block(self, entry: IpBlock) -> None:
        expires = None if entry.expires_at is None else entry.expires_at.timestamp()
        self.matcher.add(ipaddress.ip_network(entry.network), expires)

    def apply_event(self, event_type: str, data: dict[str, Any]) -> bool:
        """Update the matcher from a bus event; True if the event was one of ours."""
        try:
            if event_type == IP_BLOCKED:
                expires = data.get("expires")
                self.matcher.add(
                    ipaddress.ip_network(str(data["network"])),
                    None if expires is None else float(expires),
                )
                return True
            if event_type == IP_UNBLOCKED:
                self.matcher.remove(ipaddress.ip_network(str(data["network"])))
                return True
        except (KeyError, ValueError, TypeError):
            return False
        return False


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str)
