"""Who a delivery is for and what became of each recipient: shared by the one-message
delivery (``store.messages``) and the group commit (``store.group_delivery``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from a3mail.store.context import fetchall
from a3mail.store.names import normalize_address
from a3mail.store.records import DeliveryResult, DeliveryStatus, InvalidName


def now_local() -> datetime:
    """Now, in the local time zone (a message's default internal date)."""
    return datetime.now().astimezone()


async def resolve_targets(conn: Any, recipients: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Map each recipient to its accounts (itself and its alias's local targets: an
    account's own alias is a forward; else its domain's catch-all's) in one query."""
    normalized: dict[str, str | None] = {}
    for recipient in recipients:
        try:
            normalized[recipient] = normalize_address(recipient)
        except InvalidName:
            normalized[recipient] = None
    addresses = sorted({a for a in normalized.values() if a is not None})
    rows = await fetchall(
        conn,
        "SELECT r.addr, a.id AS account_id FROM unnest(%(a)s::text[]) AS r(addr)"
        " JOIN accounts a ON a.address = r.addr"
        " UNION ALL"
        " SELECT r.addr, ac.id FROM unnest(%(a)s::text[]) AS r(addr)"
        " JOIN aliases al ON al.address = r.addr JOIN accounts ac ON ac.address = al.target"
        # the domain's catch-all, for an address that is neither an account nor an alias
        " UNION ALL"
        " SELECT r.addr, ac.id FROM unnest(%(a)s::text[]) AS r(addr)"
        " JOIN aliases al ON al.address = '@' || regexp_replace(r.addr, '^.*@', '')"
        " JOIN accounts ac ON ac.address = al.target"
        " WHERE NOT EXISTS (SELECT 1 FROM accounts x WHERE x.address = r.addr)"
        " AND NOT EXISTS (SELECT 1 FROM aliases y WHERE y.address = r.addr)"
        " ORDER BY 1, 2",
        {"a": addresses},
    )
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row["addr"], []).append(row["account_id"])
    return {r: tuple(dict.fromkeys(found.get(a, ()))) if a else () for r, a in normalized.items()}


def delivery_result(
    recipient: str, account_ids: tuple[int, ...], added: Mapping[int, Mapping[str, Any]]
) -> DeliveryResult:
    """The outcome for *recipient* from the per-account rows of the delivery statement."""
    if not account_ids:
        return DeliveryResult(recipient, DeliveryStatus.UNKNOWN)
    for account_id in account_ids:
        row = added.get(account_id)
        if row is not None and row["status"] == "delivered":
            return DeliveryResult(
                recipient, DeliveryStatus.DELIVERED, account_id, row["mailbox_id"], row["uid"]
            )
    statuses = [added[a]["status"] if a in added else "unknown" for a in account_ids]
    for status in ("over_quota", "disabled"):
        if status in statuses:
            return DeliveryResult(recipient, DeliveryStatus(status), account_ids[0])
    return DeliveryResult(recipient, DeliveryStatus.UNKNOWN, account_ids[0])
