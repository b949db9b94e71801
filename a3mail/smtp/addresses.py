"""Parsing the arguments of ``MAIL FROM`` and ``RCPT TO`` (RFC 5321 4.1.2, RFC 6531).

``FROM:<local@domain> SIZE=1234 BODY=8BITMIME SMTPUTF8``: a reverse- or forward-path with
optional source route (ignored), a dot-atom or quoted-string local part (UTF-8 allowed,
RFC 6531), a domain (UTF-8 labels allowed) or an address literal (``[192.0.2.1]``,
``[IPv6:2001:db8::1]``), then ``KEYWORD[=value]`` parameters.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from a3mail.smtp import replies
from a3mail.smtp.replies import Reply

MAX_PATH = 256  # RFC 5321 4.5.3.1.3, octets including the brackets
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010FFFF]|\\[\x20-\x7e])*"')
_LABEL = re.compile(r"(?!-)[A-Za-z0-9\-\u0080-\U0010FFFF]{1,63}(?<!-)")
_KEYWORD = re.compile(rb"[A-Za-z0-9][A-Za-z0-9\-]*")
_VALUE = re.compile(rb"[\x21-\x3c\x3e-\x7e]+")


class AddressError(Exception):
    """The argument cannot be used; :attr:`reply` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


@attrs.frozen
class MailPath:
    """A parsed path.  ``address`` is ``""`` for the null reverse-path ``<>``."""

    local: str
    domain: str

    @property
    def address(self) -> str:
        """``local@domain`` (or ``""`` for the null path)."""
        return f"{self.local}@{self.domain}" if self.local else ""

    @property
    def is_null(self) -> bool:
        """True for ``<>``."""
        return not self.local

    @property
    def is_literal(self) -> bool:
        """True if the domain is an address literal like ``[192.0.2.1]``."""
        return self.domain.startswith("[")

    @property
    def is_ascii(self) -> bool:
        """True if the address needs no SMTPUTF8."""
        return self.address.isascii()


@attrs.frozen
class PathArgument:
    """A path and its parameters (keywords upper-cased; value None for a bare keyword)."""

    path: MailPath
    params: dict[str, str | None]


def parse_argument(rest: bytes, keyword: bytes, *, allow_null: bool) -> PathArgument:
    """Parse ``FROM:<path> params`` (*keyword* ``b"FROM"``) or ``TO:<path> params``."""
    head = rest[: len(keyword) + 1]
    if head.upper() != keyword + b":":
        raise AddressError(replies.SYNTAX)
    text = rest[len(keyword) + 1 :].lstrip(b" ")
    if text.startswith(b"<"):
        end = _closing_bracket(text)
        raw_path, tail = text[1:end], text[end + 1 :]
        if tail and not tail.startswith(b" "):
            raise AddressError(replies.SYNTAX)
    else:  # lenient: a bare address without brackets
        raw_path, _, tail = text.partition(b" ")
        tail = b" " + tail if tail else b""
    if len(raw_path) + 2 > MAX_PATH:
        raise AddressError(replies.BAD_ADDRESS.with_text("Address too long"))
    path = parse_path(raw_path, allow_null=allow_null)
    return PathArgument(path, parse_params(tail))


def _closing_bracket(text: bytes) -> int:
    quoted = False
    i = 1
    while i < len(text):
        c = text[i : i + 1]
        if quoted and c == b"\\":
            i += 2
            continue
        if c == b'"':
            quoted = not quoted
        elif c == b">" and not quoted:
            return i
        i += 1
    raise AddressError(replies.SYNTAX)


def parse_path(raw: bytes, *, allow_null: bool) -> MailPath:
    """Parse the inside of ``<...>``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AddressError(replies.BAD_ADDRESS) from None
    if text == "":
        if allow_null:
            return MailPath("", "")
        raise AddressError(replies.BAD_ADDRESS)
    if text.startswith("@"):  # source route "@a,@b:user@domain" (RFC 5321 C: ignore it)
        _route, colon, text = text.partition(":")
        if not colon:
            raise AddressError(replies.BAD_ADDRESS)
    local, at, domain = text.rpartition("@")
    if not at:
        raise AddressError(replies.BAD_ADDRESS)
    check_local_part(local)
    check_domain(domain)
    return MailPath(local, domain)


def check_local_part(local: str) -> None:
    """A dot-atom or a quoted string of at most 64 octets."""
    if not local or len(local.encode()) > MAX_LOCAL_PART:
        raise AddressError(replies.BAD_ADDRESS)
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        raise AddressError(replies.BAD_ADDRESS)


def check_domain(domain: str) -> None:
    """Labels (UTF-8 allowed) or an address literal."""
    if not domain or len(domain.encode()) > MAX_DOMAIN:
        raise AddressError(replies.BAD_ADDRESS)
    if domain.startswith("["):
        if not domain.endswith("]"):
            raise AddressError(replies.BAD_ADDRESS)
        inner = domain[1:-1]
        try:
            if inner[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            raise AddressError(replies.BAD_ADDRESS) from None
        return
    labels = domain.rstrip(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressError(replies.BAD_ADDRESS)


def parse_params(tail: bytes) -> dict[str, str | None]:
    """``" SIZE=10 BODY=8BITMIME SMTPUTF8"`` -> ``{"SIZE": "10", ...}``."""
    params: dict[str, str | None] = {}
    for item in tail.split(b" "):
        if not item:
            continue
        key, eq, value = item.partition(b"=")
        if not _KEYWORD.fullmatch(key) or (eq and not _VALUE.fullmatch(value)):
            raise AddressError(replies.SYNTAX)
        name = key.decode("ascii").upper()
        if name in params:
            raise AddressError(replies.SYNTAX.with_text(f"Duplicate parameter {name}"))
        params[name] = value.decode("ascii") if eq else None
    return params


def literal_address(domain: str) -> str | None:
    """The IP address inside an address literal (``[IPv6:::1]`` -> ``::1``), else None."""
    if not domain.startswith("["):
        return None
    inner = domain[1:-1]
    return inner[5:] if inner[:5].lower() == "ipv6:" else inner
