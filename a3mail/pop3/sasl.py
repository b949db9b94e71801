"""SASL PLAIN (RFC 4616) and LOGIN for POP3 AUTH (RFC 5034): decoding client responses.

Each mechanism is a small state machine: :meth:`step` takes one decoded client response
and returns either the next challenge (bytes, sent base64-encoded after ``+ ``) or the
finished :class:`Credentials`.  Malformed input raises :class:`SaslError`, whose message
is safe to show to the client.
"""

from __future__ import annotations

import base64
import binascii

import attrs

MECHANISMS = (b"PLAIN", b"LOGIN")
CANCEL = b"*"


class SaslError(Exception):
    """The client's response cannot be used (the text is safe to send)."""


@attrs.frozen
class Credentials:
    """A user name and password, as the client sent them."""

    username: bytes
    password: bytes = attrs.field(repr=False)


def decode_response(line: bytes) -> bytes:
    """Decode one base64 client response (``=`` is an empty initial response)."""
    if line == b"=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("invalid base64 in SASL response") from None


class Plain:
    """PLAIN: one response ``authzid NUL authcid NUL password``; no proxy authorisation."""

    def __init__(self) -> None:
        self.first_challenge = b""

    def step(self, response: bytes) -> bytes | Credentials:
        """The credentials in the single response."""
        parts = response.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            raise SaslError("malformed PLAIN response")
        authzid, authcid, password = parts
        if authzid and authzid != authcid:
            raise SaslError("authorization identity must be empty or the user name")
        return Credentials(authcid, password)


class Login:
    """LOGIN: the user name, then the password, each answering a prompt."""

    def __init__(self) -> None:
        self.first_challenge = b"Username:"
        self._username: bytes | None = None

    def step(self, response: bytes) -> bytes | Credentials:
        """Ask for the password after the user name; then return both."""
        if self._username is None:
            if not response:
                raise SaslError("empty user name")
            self._username = response
            return b"Password:"
        return Credentials(self._username, response)


def mechanism(name: bytes) -> Plain | Login | None:
    """A fresh state machine for the named mechanism, or None if not supported."""
    upper = name.upper()
    if upper == b"PLAIN":
        return Plain()
    if upper == b"LOGIN":
        return Login()
    return None
