"""Who may send what to whom.

- Without authentication (the MX): any sender; recipients only in our domains, and only
  existing addresses or aliases (``550 5.1.1`` otherwise); anything else is a relay
  attempt (``554 5.7.1``).  a3mail is never an open relay.
- Authenticated (submission, or AUTH on the MX after TLS): the sender must be the user's
  own address or an alias that resolves to the user's account (``553 5.7.1``; the null
  sender is refused); remote recipients are accepted and go to the outbound queue.
- A local recipient whose every mailbox is over quota gets ``452 4.2.2`` (or ``552 5.2.2``,
  ``smtp.over_quota_reply``), decided with the size announced in ``MAIL FROM SIZE=`` (or
  the current usage when none was given).
"""

from __future__ import annotations

import attrs

from a3mail.smtp import replies
from a3mail.smtp.addresses import MailPath
from a3mail.smtp.replies import Reply
from a3mail.store import Store
from a3mail.store.names import normalize_address, normalize_domain
from a3mail.store.records import InvalidName


@attrs.frozen
class AuthUser:
    """The authenticated client: its account."""

    address: str
    account_id: int


@attrs.frozen
class Recipient:
    """An accepted recipient.

    ``address``: as the client gave it.  ``target``: the store-normalised address (local)
    or the address with its domain in A-label form (remote).  ``local``: delivered into the
    store (an account, or an alias with local accounts).  ``external``: alias targets
    outside (forwarded through the queue).  ``remote``: a relayed recipient (queue).
    """

    address: str
    target: str
    local: bool = False
    external: tuple[str, ...] = ()
    remote: bool = False


class Policy:
    """Sender and recipient decisions for one listener."""

    def __init__(self, store: Store, over_quota_reply: int = 452) -> None:
        self.store = store
        self.over_quota = (
            replies.OVER_QUOTA_PERMANENT
            if over_quota_reply == 552
            else replies.OVER_QUOTA_TEMPORARY
        )

    async def check_sender(self, user: AuthUser | None, path: MailPath) -> Reply | None:
        """None if *path* may be used as MAIL FROM, else the refusal."""
        if user is None:
            return None
        if path.is_null:
            return replies.NULL_SENDER_REFUSED
        try:
            address = normalize_address(path.address)
        except InvalidName:
            return replies.SENDER_NOT_OWNED
        if address == user.address:
            return None
        # A catch-all alias receives for the domain; it does not let its owner send as
        # every address of it.
        resolution = await self.store.accounts.resolve(address, catch_all=False)
        if user.account_id in resolution.account_ids:
            return None
        return replies.SENDER_NOT_OWNED

    async def check_recipient(
        self, user: AuthUser | None, path: MailPath, size: int
    ) -> tuple[Reply, Recipient | None]:
        """The reply to ``RCPT TO`` and, when accepted, the recipient."""
        if path.is_literal:  # we host domains, not addresses: a literal is never ours
            return self._remote(user, path, path.domain.lower())
        check = await self.store.recipients.check(path.address, size)
        if not check.local_domain:
            try:
                domain = normalize_domain(path.domain)
            except InvalidName:
                return replies.BAD_ADDRESS, None
            return self._remote(user, path, domain)
        if not check.exists:
            return replies.USER_UNKNOWN, None
        if check.all_disabled:
            return replies.MAILBOX_DISABLED, None
        if check.over_quota:
            return self.over_quota, None
        recipient = Recipient(
            path.address, check.address, bool(check.account_ids), tuple(check.external)
        )
        return replies.RECIPIENT_OK, recipient

    def _remote(
        self, user: AuthUser | None, path: MailPath, domain: str
    ) -> tuple[Reply, Recipient | None]:
        if user is None:
            return replies.RELAY_DENIED, None
        return replies.RECIPIENT_OK, Recipient(path.address, f"{path.local}@{domain}", remote=True)
