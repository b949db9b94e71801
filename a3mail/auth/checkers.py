"""twisted.cred checkers over the store: passwords of mail accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from a3mail.auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from a3mail.store import Store
from a3mail.store.records import Account


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@implementer(ICredentialsChecker)
class AccountPasswordChecker:
    """Checks an address and password against the store; the avatar id is the address
    (UTF-8 bytes, as twisted.cred expects).

    The argon2id verification runs in the reactor's thread pool.  Unknown, disabled and
    expired accounts fail exactly like a wrong password (same error, same cost).
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, store: Store, reactor: IReactorThreads | None = None) -> None:
        self.store = store
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor  # type: ignore[assignment]
        self.reactor: Any = reactor

    async def _check(self, username: str, password: str) -> bytes | tuple[()]:
        account: Account | None = None
        if len(password) <= MAX_PASSWORD_LENGTH and len(username) <= 320:
            account = await self.store.accounts.find(username)
        usable = account is not None and account.enabled and not _expired(account)
        stored = account.password_hash if (usable and account is not None) else None
        ok = await deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), verify_password, stored, password
        )
        if not ok or account is None:
            raise UnauthorizedLogin("authentication failed")
        return account.address.encode("utf-8")

    def requestAvatarId(self, credentials: Any) -> Deferred[bytes | tuple[()]]:
        """Deferred firing with the account's address, or failing with UnauthorizedLogin."""
        d: Deferred[bytes | tuple[()]] = Deferred.fromCoroutine(
            self._check(_text(credentials.username), _text(credentials.password))
        )
        return d


def _expired(account: Account) -> bool:
    return account.expires_at is not None and account.expires_at <= datetime.now(UTC)
