"""Who a delivery is for and what became of each recipient: shared by the one-message
delivery (``store.messages``) and the group commit (``store.group_delivery``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from a3mail.store.context import fetchall
from a3mail.store.names import address_candidates, normalize_address
from a3mail.store.records import DeliveryResult, DeliveryStatus, InvalidName


def now_local() -> datetime:
    """Now, in the local time zone (a message's default internal date)."""
    return datetime.now().astimezone()


async def resolve_targets(
    conn: Any, recipients: Sequence[str], delimiters: str = "+"
) -> dict[str, tuple[int, ...]]:
    """Map each recipient to its accounts in one query: the first of its
    :func:`~a3mail.store.names.address_candidates` (itself, itself without its extension,
    its domain's catch-all) that is an account or an alias gives them (an account and its
    own alias's local targets: an account's own alias is a forward)."""
    candidates: dict[str, list[str]] = {}
    for recipient in recipients:
        try:
            candidates[recipient] = address_candidates(normalize_address(recipient), delimiters)
        except InvalidName:
            candidates[recipient] = []
    lookup = sorted({c for cs in candidates.values() for c in cs})
    rows = await fetchall(
        conn,
        "SELECT r.addr, a.id AS account_id FROM unnest(%(a)s::text[]) AS r(addr)"
        " JOIN accounts a ON a.address = r.addr"
        " UNION ALL"
        " SELECT r.addr, ac.id FROM unnest(%(a)s::text[]) AS r(addr)"
        " JOIN aliases al ON al.address = r.addr LEFT JOIN accounts ac ON ac.address = al.target"
        " ORDER BY 1, 2",
        {"a": lookup},
    )
    found: dict[str, list[int]] = {}
    for row in rows:  # an alias with only external targets still counts as found
        ids = found.setdefault(row["addr"], [])
        if row["account_id"] is not None:
            ids.append(row["account_id"])
    out: dict[str, tuple[int, ...]] = {}
    for recipient, options in candidates.items():
        hit = next((found[c] for c in options if c in found), [])
        out[recipient] = tuple(dict.fromkeys(hit))
    return out


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
