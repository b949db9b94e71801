"""The JSON shapes of the temp-mail API (field names exactly as mail.ry.edu.kg's)."""

from __future__ import annotations

from typing import Any

from a3mail.http.responses import iso
from a3mail.store.records import Account, MessageContent, MessageInfo
from a3mail.store.tempmail import is_seen


def mailbox_json(account: Account) -> dict[str, Any]:
    """One temp address as listed: ``{emailId, email, name, domain, createdAt, expiresAt}``."""
    name, _, domain = account.address.rpartition("@")
    return {
        "emailId": str(account.id),
        "email": account.address,
        "name": name,
        "domain": domain,
        "createdAt": iso(account.created_at),
        "expiresAt": iso(account.expires_at),
    }


def _sender(info: MessageInfo, parsed: dict[str, Any] | None) -> str:
    found = (parsed or {}).get("from")
    if isinstance(found, list) and found and isinstance(found[0], dict):
        address = str(found[0].get("address") or "")
        if address:
            return address
    return info.from_addr


def message_summary_json(info: MessageInfo, sender: str) -> dict[str, Any]:
    """One message as listed (plus ``verificationCode``, an a3mail addition)."""
    return {
        "messageId": str(info.uid),
        "from": sender or info.from_addr,
        "subject": info.subject,
        "createdAt": iso(info.internal_date),
        "isRead": is_seen(info),
        "hasAttachment": info.has_attachments,
        "verificationCode": info.verification_code,
    }


def attachments_json(parsed: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``[{attachmentId, filename, contentType, size}]``; the id is the part's IMAP section."""
    found = (parsed or {}).get("attachments")
    if not isinstance(found, list):
        return []
    return [
        {
            "attachmentId": str(a.get("section") or ""),
            "filename": a.get("filename") or "",
            "contentType": a.get("content_type") or "application/octet-stream",
            "size": int(a.get("size") or 0),
        }
        for a in found
        if isinstance(a, dict) and a.get("section")
    ]


def message_json(account: Account, content: MessageContent, *, read: bool) -> dict[str, Any]:
    """One message in full (plus ``verificationCode``)."""
    info = content.info
    return {
        "messageId": str(info.uid),
        "emailId": str(account.id),
        "from": _sender(info, content.parsed),
        "to": account.address,
        "subject": info.subject,
        "text": content.text,
        "html": content.html,
        "createdAt": iso(info.internal_date),
        "isRead": read,
        "hasAttachment": info.has_attachments,
        "verificationCode": info.verification_code,
        "attachments": attachments_json(content.parsed),
    }
