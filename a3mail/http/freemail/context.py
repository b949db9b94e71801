"""What the freemail handlers share: the store, the configuration, the clock and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred

from a3mail.auth import passwords
from a3mail.config_records import FreemailConfig
from a3mail.http.freemail.common import Principal, forbidden, not_found
from a3mail.store.freemail import FreemailMailbox


def _in_thread(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return Deferred.fromFuture(asyncio.ensure_future(asyncio.to_thread(fn, *args)))


async def hash_in_thread(password: str) -> str:
    """An argon2id hash, computed in a worker thread."""
    result: str = await _in_thread(passwords.hash_password, password)
    return result


async def verify_in_thread(stored: str | None, password: str) -> bool:
    """Check a password against an argon2id hash in a worker thread."""
    result: bool = await _in_thread(passwords.verify_password, stored, password)
    return result


class FreemailContext:
    """The store, a live view of the configuration, the clock and the password functions
    (tests swap in fast ones)."""

    def __init__(
        self,
        store: Any,
        config: Callable[[], Any],
        clock: Any,
        *,
        hash_password: Callable[[str], Awaitable[str]] = hash_in_thread,
        verify_password: Callable[[str | None, str], Awaitable[bool]] = verify_in_thread,
    ) -> None:
        self.store = store
        self._config = config
        self.clock = clock
        self.hash_password = hash_password
        self.verify_password = verify_password

    @property
    def config(self) -> Any:
        """The whole configuration now (reloads are seen)."""
        return self._config()

    @property
    def settings(self) -> FreemailConfig:
        """The ``[freemail]`` section now."""
        section: FreemailConfig = self._config().freemail
        return section

    def now(self) -> datetime:
        """The current time by the clock."""
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    async def domains(self) -> list[str]:
        """The domains offered: ``freemail.domains``, else the temp-mail domains."""
        configured = list(self.settings.domains)
        if configured:
            return configured
        found: list[str] = await self.store.tempmail.domains()
        return found

    async def mailbox(
        self,
        caller: Principal,
        *,
        address: str | None = None,
        account_id: int | None = None,
    ) -> FreemailMailbox:
        """A mailbox *caller* may use (by address or id); 404 for any other, so ids of
        other users' mailboxes look exactly like ids that do not exist."""
        box: FreemailMailbox | None = await self.store.freemail.mailbox(
            address=address, account_id=account_id
        )
        if box is None or not await self.may_use(caller, box.account_id):
            raise not_found("mailbox not found")
        return box

    async def may_use(self, caller: Principal, account_id: int) -> bool:
        """True if *caller* may read and manage mailbox *account_id*."""
        if caller.sees_all:
            return True
        if caller.account_id is not None:
            return caller.account_id == account_id
        if caller.user_id is None:
            return False
        owned = await self.store.freemail.owned(caller.user_id, [account_id])
        return account_id in owned

    async def usable(self, caller: Principal, account_ids: list[int]) -> set[int]:
        """Which of *account_ids* *caller* may use."""
        if caller.sees_all:
            return set(account_ids)
        if caller.account_id is not None:
            return {caller.account_id} & set(account_ids)
        if caller.user_id is None:
            return set()
        owned: set[int] = await self.store.freemail.owned(caller.user_id, account_ids)
        return owned


def require_strict(caller: Principal) -> None:
    """403 unless *caller* is the strict admin."""
    if not caller.strict:
        raise forbidden("only the strict admin may do this")


def require_manager(caller: Principal) -> None:
    """403 for mailbox logins and guests (they manage no mailboxes)."""
    if caller.role not in ("admin", "user"):
        raise forbidden("this login cannot manage mailboxes")
