"""Recipient checks for mail reception: is the domain ours, who gets it, is there room.

One call, one transaction, so that an SMTP server can answer each ``RCPT TO`` with a
per-recipient outcome (unknown user, over quota, accepted) before the message arrives.
"""

from __future__ import annotations

from typing import Any

import attrs

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.names import address_candidates, normalize_address, normalize_domain
from a3mail.store.records import InvalidName


@attrs.frozen
class RecipientCheck:
    """What the store knows about one recipient address.

    ``local_domain``: the domain is one of ours (and enabled).  ``account_ids`` and
    ``external``: where mail for it goes (an account, or an alias's targets).
    ``accepting``: the local accounts that are enabled and have room for the size asked.
    """

    address: str
    local_domain: bool
    account_ids: tuple[int, ...] = ()
    external: tuple[str, ...] = ()
    accepting: tuple[int, ...] = ()
    disabled: tuple[int, ...] = ()

    @property
    def exists(self) -> bool:
        """True if the address is a local account or an alias."""
        return bool(self.account_ids or self.external)

    @property
    def over_quota(self) -> bool:
        """True if no target can take the message because of quota (none accepting, none
        external, and not all disabled)."""
        return (
            bool(self.account_ids)
            and not self.accepting
            and not self.external
            and len(self.disabled) < len(self.account_ids)
        )

    @property
    def all_disabled(self) -> bool:
        """True if every target is a disabled local account."""
        return (
            bool(self.account_ids)
            and not self.external
            and set(self.disabled) == set(self.account_ids)
        )


# One round trip: the domain, and the accounts and alias targets (each with its account if
# it is one of ours) of every candidate address (names.address_candidates: the address,
# without its extension, the domain's catch-all); the first candidate that is an account
# or an alias wins: the same resolution as accounts.resolve_address.
_CHECK = """
SELECT 'domain' AS kind, NULL::text AS key, NULL::text AS target, NULL::bigint AS id,
       enabled, NULL::bigint AS quota_bytes, NULL::bigint AS used_bytes
  FROM domains WHERE name = %(domain)s
UNION ALL
SELECT 'account', address, address, id, enabled, quota_bytes, used_bytes
  FROM accounts WHERE address = ANY(%(candidates)s)
UNION ALL
SELECT 'alias', al.address, al.target, ac.id, ac.enabled, ac.quota_bytes, ac.used_bytes
  FROM aliases al LEFT JOIN accounts ac ON ac.address = al.target
 WHERE al.address = ANY(%(candidates)s)
"""


class Recipients:
    """Recipient checks."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def check(self, address: str, size: int = 0) -> RecipientCheck:
        """Check one recipient for a message of *size* bytes (0 = size unknown: then an
        account at or over its quota is refused)."""
        try:
            domain = normalize_domain(address.rpartition("@")[2])
        except InvalidName:
            return RecipientCheck(address, local_domain=False)
        try:
            normalized: str | None = normalize_address(address)
        except InvalidName:
            normalized = None
        # One read-only statement on the autocommit pool: no BEGIN/COMMIT round trips.
        # (Never toggle autocommit on a pooled connection: the pool keeps the setting,
        # and every later single statement would then pay for BEGIN and COMMIT.)
        candidates = (
            address_candidates(normalized, self.ctx.recipient_delimiter) if normalized else []
        )
        rows = await self.ctx.db.fetchall(_CHECK, {"domain": domain, "candidates": candidates})
        if not any(r["kind"] == "domain" and r["enabled"] for r in rows):
            return RecipientCheck(address, local_domain=False)
        if normalized is None:
            return RecipientCheck(address, local_domain=True)
        chosen: list[Any] = []
        for candidate in candidates:
            chosen = [r for r in rows if r["kind"] != "domain" and r["key"] == candidate]
            if chosen:
                break
        targets = sorted(chosen, key=lambda r: (r["kind"], r["target"]))
        accounts = {r["id"]: r for r in targets if r["id"] is not None}
        external = tuple(r["target"] for r in targets if r["id"] is None)
        need = max(size, 1)
        accepting = tuple(
            sorted(
                i
                for i, a in accounts.items()
                if a["enabled"]
                and (not a["quota_bytes"] or a["used_bytes"] + need <= a["quota_bytes"])
            )
        )
        disabled = tuple(sorted(i for i, a in accounts.items() if not a["enabled"]))
        return RecipientCheck(normalized, True, tuple(accounts), external, accepting, disabled)
