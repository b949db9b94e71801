"""Bounces and delay warnings: decided with the attempt, recorded with it, then sent.

:meth:`NoticeSender.drafts` turns one attempt's results into notice drafts (a ``failed``
notice for recipients that failed for good, a ``delayed`` one the first time an entry is
still deferred after ``delay_warning``; never to the null sender).  The runner records them
in the attempt's own transaction (``store.outbound.record(..., notices=...)``), so a crash
right after the commit cannot lose a bounce; :meth:`NoticeSender.send` then builds the
RFC 3464 report (:mod:`a3mail.outbound.dsn`), delivers it into the sender's mailbox (local
sender) or queues it from the null sender (remote sender), and deletes the notice row.
:meth:`NoticeSender.send_pending` sends notices left behind by a process that died.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from a3mail.logs import get_logger
from a3mail.outbound.dsn import DSNRecipient, build_dsn
from a3mail.store.notices import Notice, NoticeDraft, NoticeRecipient
from a3mail.store.outbound import LeasedEntry, RecipientResult

log = get_logger(__name__)


class NoticeSender:
    """Builds, records and sends the DSNs of one queue runner."""

    def __init__(self, store: Any, reporting_mta: str, worker: str, lease_time: float) -> None:
        self.store = store
        self.reporting_mta = reporting_mta
        self.worker = worker
        self.lease_time = lease_time
        self.sent = {"failed": 0, "delayed": 0}

    def drafts(
        self,
        item: LeasedEntry,
        results: Sequence[RecipientResult],
        headers: bytes,
        *,
        warn_delay: bool,
    ) -> list[NoticeDraft]:
        """The notices one attempt calls for (*warn_delay*: the entry is old enough and
        was never warned)."""
        entry = item.entry
        if not entry.sender:
            return []
        drafts = []
        for action, status, wanted in (
            ("failed", "failed", True),
            ("delayed", "deferred", warn_delay),
        ):
            group = tuple(
                NoticeRecipient(r.recipient, r.code, r.reply, r.remote_mta)
                for r in results
                if r.status == status
            )
            if wanted and group:
                drafts.append(
                    NoticeDraft(entry.id, action, entry.sender, group, headers, entry.created_at)
                )
        return drafts

    async def send(self, notice: Notice) -> bool:
        """Send one recorded notice and forget it; False (and the notice given back for a
        later try) when it could not be sent."""
        draft = notice.draft
        report = build_dsn(
            reporting_mta=self.reporting_mta,
            sender=draft.sender,
            recipients=[
                DSNRecipient(r.recipient, draft.action, r.code, r.reply, r.remote_mta)
                for r in draft.recipients
            ],
            headers=draft.headers,
            arrival=draft.arrival,
            queue_id=str(draft.entry_id),
        )
        try:
            blob = await self.store.incoming(report)
            if await self._is_local(draft.sender):
                from a3mail.smtp.delivery import parse_json

                await self.store.messages.deliver(blob, [draft.sender], parse=parse_json)
            else:
                await self.store.queue.enqueue(blob, "", [draft.sender], keep_source=False)
        except Exception as exc:
            log.warn(
                "outbound: cannot send the {action} notice for entry {id} (kept to retry): {error}",
                action=draft.action,
                id=draft.entry_id,
                error=exc,
            )
            await self._give_back(notice)
            return False
        self.sent[draft.action] += 1
        try:
            await self.store.notices.done(notice.id)
        except Exception as exc:  # it was sent; at worst it is sent again later
            log.warn("outbound: cannot clear notice {id}: {error}", id=notice.id, error=exc)
        return True

    async def send_pending(self, limit: int = 50) -> int:
        """Send notices nobody holds (their runner died before sending them)."""
        notices = await self.store.notices.lease(self.worker, limit, self.lease_time)
        sent = 0
        for notice in notices:
            sent += await self.send(notice)
        return sent

    async def _give_back(self, notice: Notice) -> None:
        try:
            await self.store.notices.release(notice.id, self.worker)
        except Exception as exc:  # its lease expires on its own
            log.warn("outbound: cannot release notice {id}: {error}", id=notice.id, error=exc)

    async def _is_local(self, address: str) -> bool:
        resolution = await self.store.accounts.resolve(address)
        return bool(resolution.account_ids)


__all__ = ["NoticeSender"]
