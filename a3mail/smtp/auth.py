"""SMTP AUTH (RFC 4954): SASL PLAIN and LOGIN over twisted.cred.

A :class:`SaslExchange` turns the client's base64 responses into a username and a
password; :class:`Authenticator` checks them through a twisted.cred ``Portal`` (the
store-backed :class:`~a3mail.auth.checkers.AccountPasswordChecker`) and records every
outcome with the :class:`~a3mail.auth.guard.LoginGuard`, which also delays failures.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from zope.interface import Interface, implementer

from a3mail.auth.checkers import AccountPasswordChecker
from a3mail.auth.guard import LoginGuard
from a3mail.ops.metrics import Metrics
from a3mail.store import Store

MECHANISMS = (b"PLAIN", b"LOGIN")
PROTOCOL = "smtp"


class ISmtpUser(Interface):
    """The avatar of an authenticated SMTP client: its account address (str)."""


@implementer(IRealm)
class SmtpRealm:
    """Gives an authenticated client its address as avatar."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Any]:
        """The address (decoded) for :class:`ISmtpUser`."""
        if ISmtpUser not in interfaces:
            raise NotImplementedError("only ISmtpUser avatars")
        address = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        return ISmtpUser, address, lambda: None


class SaslError(Exception):
    """The exchange cannot go on: ``"aborted"``, ``"base64"`` or ``"syntax"``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@attrs.frozen
class Credentials:
    """What the client claimed."""

    username: str
    password: str


class SaslExchange:
    """One PLAIN or LOGIN exchange.  :meth:`step` takes the client's (base64) response,
    or None for an AUTH command without an initial response, and returns the next
    challenge (bytes, to be base64-encoded in a 334 reply) or the final credentials."""

    def __init__(self, mechanism: bytes) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(mechanism)
        self.mechanism = mechanism
        self._username: str | None = None

    def step(self, response: bytes | None) -> bytes | Credentials:
        """Advance the exchange by one client response."""
        if response is None:
            return b"" if self.mechanism == b"PLAIN" else b"Username:"
        if response.strip() == b"*":
            raise SaslError("aborted")
        data = _b64(response)
        if self.mechanism == b"PLAIN":
            return _plain(data)
        text = _utf8(data)
        if self._username is None:
            self._username = text
            return b"Password:"
        return Credentials(self._username, text)


def _b64(response: bytes) -> bytes:
    text = response.strip()
    if text == b"=":  # RFC 4954: an empty initial response
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("base64") from None


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("syntax") from None


def _plain(data: bytes) -> Credentials:
    """RFC 4616: ``authzid NUL authcid NUL passwd``; an authzid must equal the authcid."""
    parts = data.split(b"\0")
    if len(parts) != 3 or not parts[1]:
        raise SaslError("syntax")
    authzid, authcid, password = (_utf8(p) for p in parts)
    if authzid and authzid.lower() != authcid.lower():
        raise SaslError("syntax")
    return Credentials(authcid, password)


class Authenticator:
    """Checks credentials through twisted.cred; records and delays failures."""

    def __init__(
        self,
        store: Store,
        reactor: Any,
        failure_delay: float,
        clock: Any = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.portal = Portal(SmtpRealm(), [AccountPasswordChecker(store, reactor)])
        self.guard = LoginGuard(
            store, reactor if clock is None else clock, failure_delay, metrics=metrics
        )

    async def authenticate(self, credentials: Credentials, ip: str | None) -> str | None:
        """The account address on success; None (after the failure delay) otherwise."""
        try:
            _iface, address, _logout = await self.portal.login(
                UsernamePassword(
                    credentials.username.encode("utf-8"), credentials.password.encode("utf-8")
                ),
                None,
                ISmtpUser,
            )
        except UnauthorizedLogin:
            await self.guard.failed(PROTOCOL, credentials.username, ip, "bad credentials")
            return None
        await self.guard.succeeded(PROTOCOL, str(address), ip)
        return str(address)

    async def refused(self, username: str, ip: str | None, reason: str) -> None:
        """Record (and delay) a failure that never reached the checker (bad SASL data)."""
        await self.guard.failed(PROTOCOL, username, ip, reason)
