"""Validation and normalisation of domain names, addresses and mailbox names."""

from __future__ import annotations

import re
import unicodedata

from a3mail.store.records import InvalidName

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_FORBIDDEN = re.compile(r"[\s\"(),:;<>@\[\\\]/\x00-\x1f\x7f]")
MAILBOX_SEPARATOR = "/"
INBOX = "INBOX"
MAX_MAILBOX_NAME = 512
MAX_MAILBOX_DEPTH = 32


def normalize_domain(name: str) -> str:
    """Lower-case a domain name (IDNs to their A-label form) and check its syntax."""
    text = name.strip().rstrip(".").lower()
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as e:
        raise InvalidName(f"invalid domain name: {name!r}") from e
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise InvalidName(f"invalid domain name: {name!r}")
    return ascii_name


def normalize_address(address: str) -> str:
    """Lower-case ``local@domain`` and check it; the local part may be UTF-8 (SMTPUTF8)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise InvalidName(f"invalid address: {address!r}")
    local = unicodedata.normalize("NFC", local).lower()
    if (
        len(local.encode()) > 64
        or _LOCAL_FORBIDDEN.search(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise InvalidName(f"invalid address: {address!r}")
    try:
        domain = normalize_domain(domain)
    except InvalidName as e:
        raise InvalidName(f"invalid address: {address!r}") from e
    full = f"{local}@{domain}"
    if len(full.encode()) > 254:
        raise InvalidName(f"invalid address: {address!r}")
    return full


def normalize_alias_address(address: str) -> str:
    """An alias's own address: a normal address, or ``@domain`` for the domain's catch-all
    (mail for any address of the domain that is neither an account nor an alias)."""
    text = address.strip()
    if text.startswith("@"):
        return "@" + normalize_domain(text[1:])
    return normalize_address(text)


def catch_all_of(address: str) -> str:
    """The catch-all alias address of a normalised address's domain (``@domain``)."""
    return "@" + address.rpartition("@")[2]


def address_candidates(address: str, delimiters: str, *, catch_all: bool = True) -> list[str]:
    """Where a normalised address may be found, in order: itself; without its extension
    (``alice+news@d`` -> ``alice@d``, when *delimiters* holds the separator); the domain's
    catch-all (``@d``).  The first one that is an account or an alias wins."""
    local, _, domain = address.rpartition("@")
    out = [address]
    cut = min((i for i in (local.find(c) for c in delimiters) if i > 0), default=-1)
    if cut > 0:
        out.append(f"{local[:cut]}@{domain}")
    if catch_all:
        out.append(catch_all_of(address))
    return out


def normalize_mailbox(name: str) -> str:
    """Check a mailbox name; any case of ``inbox`` (alone or as a first level) is ``INBOX``."""
    if not name or len(name) > MAX_MAILBOX_NAME:
        raise InvalidName("invalid mailbox name")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise InvalidName("invalid mailbox name")
    parts = name.split(MAILBOX_SEPARATOR)
    if len(parts) > MAX_MAILBOX_DEPTH or any(p == "" for p in parts):
        raise InvalidName("invalid mailbox name")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return MAILBOX_SEPARATOR.join(parts)


def parents(name: str) -> list[str]:
    """The ancestors of a mailbox name, outermost first (``a/b/c`` -> ``a``, ``a/b``)."""
    parts = name.split(MAILBOX_SEPARATOR)
    return [MAILBOX_SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]
