"""Group commit for deliveries: messages arriving together are made durable together.

:meth:`GroupDelivery.deliver` has the meaning of :meth:`Messages.deliver
<a3mail.store.messages.Messages.deliver>` for an already parsed message (no flags): each
distinct account of the recipients gets the message once, in *mailbox* or else its INBOX,
and every result is reported only after the index commit.  What differs is the cost.
Deliveries that arrive while a batch is being written wait for the next batch, and a batch
of N messages takes:

- ONE statement resolving every recipient of the batch to its accounts;
- ONE worker-thread hand-off linking every file into its accounts' directories, then
  fsyncing each directory once (N messages for one account: one directory fsync);
- ONE autocommit statement (one transaction, one WAL flush) calling ``a3mail_add_message``
  for every (message, account) pair, in account order;
- ONE worker-thread hand-off removing the incoming files and the links nobody took.

A delivery never waits for company: when nothing is in flight its batch starts at once.

Failures stay with the message that caused them.  A file that cannot be linked fails only
its own delivery.  If the batch statement fails (it is one transaction, so nothing of it
was committed), every message of the batch is retried alone with the same statement, so
one bad message cannot take the others with it; a message whose own statement fails gets
that error and its links are removed.  A lost database connection fails the whole batch
(each caller sees :class:`~a3mail.store.db.StoreUnavailable`, nothing was acknowledged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import psycopg

from a3mail.logs import get_logger
from a3mail.store.blobs import IncomingBlob
from a3mail.store.context import StoreContext
from a3mail.store.db import StoreUnavailable, deferred
from a3mail.store.delivery_targets import delivery_result, now_local, resolve_targets
from a3mail.store.index import INDEX_COLUMNS, index_values
from a3mail.store.names import INBOX
from a3mail.store.records import DeliveryResult

log = get_logger(__name__)

#: At most this many messages go in one batch (bounds one statement's size and latency).
MAX_BATCH = 64
#: At most this many batches run at once (a new one starts as soon as one finishes).
MAX_IN_FLIGHT = 2

# Types of the per-row arrays, after the fixed ones (item, account id, path, mailbox, size,
# internal date); the index columns follow INDEX_COLUMNS.
_INDEX_TYPES = {
    "header_size": "int",
    "sent_date": "timestamptz",
    "subject": "text",
    "from_addr": "text",
    "to_addr": "text",
    "message_id": "text",
    "has_attachments": "bool",
    "verification_code": "text",
    "preview": "text",
    "parsed": "text",
    "body_text": "text",
    "body_html": "text",
}
_FIXED = (
    ("item", "int"),
    ("account_id", "bigint"),
    ("path", "text"),
    ("mailbox", "text"),
    ("size", "bigint"),
    ("internal_date", "timestamptz"),
)
_ROW_ARRAYS = (*_FIXED, *((c, _INDEX_TYPES[c]) for c in INDEX_COLUMNS))
_INDEX_ARGS = ", ".join(f"t.{c}::jsonb" if c == "parsed" else f"t.{c}" for c in INDEX_COLUMNS)
_ADD_ALL = (
    "SELECT t.item, t.account_id, r.* FROM unnest("
    + ", ".join(f"%b::{kind}[]" for _, kind in _ROW_ARRAYS)
    + ") WITH ORDINALITY AS t("
    + ", ".join(name for name, _ in _ROW_ARRAYS)
    + ", n), LATERAL a3mail_add_message(t.account_id, t.mailbox, true, true, t.size, 0,"
    " '{}'::text[], t.internal_date, t.path, %s, " + _INDEX_ARGS + ") r ORDER BY t.n"
)


@attrs.define
class _Pending:
    """One delivery waiting for (or inside) a batch."""

    blob: IncomingBlob
    recipients: Sequence[str]
    parsed: Mapping[str, Any] | None
    mailbox: str
    keep_source: bool
    future: asyncio.Future[list[DeliveryResult]]
    values: dict[str, Any] = attrs.field(factory=dict)  # index columns, made in the thread
    targets: dict[str, tuple[int, ...]] = attrs.field(factory=dict)
    linked: dict[int, str] = attrs.field(factory=dict)
    added: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    error: BaseException | None = None
    keep_links: bool = False  # failed, but its links may be committed rows' files


class GroupDelivery:
    """Delivers concurrent messages in shared batches (see the module docstring).

    ``batches`` and ``delivered`` count batches run and messages delivered through them.
    """

    def __init__(
        self, ctx: StoreContext, max_batch: int = MAX_BATCH, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self.ctx = ctx
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.batches = 0
        self.delivered = 0
        self._queue: list[_Pending] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Future[None]] = set()

    @deferred
    async def deliver(
        self,
        blob: IncomingBlob,
        recipients: Sequence[str],
        *,
        parsed: Mapping[str, Any] | None = None,
        mailbox: str = INBOX,
        keep_source: bool = False,
    ) -> list[DeliveryResult]:
        """Deliver one fsynced message file to local recipients, in the next batch.

        Results per recipient, as :meth:`Messages.deliver` gives them, only after commit.
        The source file is removed once it is linked everywhere it goes (the links are
        what the index will point to), unless *keep_source*.
        """
        future: asyncio.Future[list[DeliveryResult]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(blob, recipients, parsed, mailbox, keep_source, future))
        self._start_batches()
        return await future

    def _start_batches(self) -> None:
        """Start a batch of whatever is queued, while fewer than max_in_flight run."""
        while self._queue and self._in_flight < self.max_in_flight:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._in_flight += 1
            task = asyncio.ensure_future(self._run_batch(batch))
            self._tasks.add(task)  # (a reference, so that the task is not collected)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[_Pending]) -> None:
        try:
            await self._deliver_batch(batch)
        except BaseException as e:  # anything unexpected fails this batch only
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(e)
            if not isinstance(e, Exception):
                raise
        finally:
            self._in_flight -= 1
            self._start_batches()

    async def _deliver_batch(self, batch: list[_Pending]) -> None:
        self.batches += 1
        recipients = sorted({r for item in batch for r in item.recipients})
        async with self.ctx.db.connection() as conn:
            targets = await resolve_targets(conn, recipients, self.ctx.recipient_delimiter)
        for item in batch:
            item.targets = {r: targets[r] for r in item.recipients}
        await self.ctx.in_thread(self._link_batch, batch)
        await self._add_all([item for item in batch if item.error is None])
        # links nobody took (over quota, disabled, failed) go before anyone hears: rare
        unwanted = [
            path
            for item in batch
            for account_id, path in item.linked.items()
            if (item.error is None and item.added[account_id]["status"] != "delivered")
            or (item.error is not None and not item.keep_links)
        ]
        if unwanted:
            await self.ctx.in_thread(self.ctx.blobs.remove, unwanted)
        for item in batch:
            if item.future.done():  # the caller gave up waiting
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
                continue
            self.delivered += 1
            item.future.set_result(
                [delivery_result(r, item.targets[r], item.added) for r in item.recipients]
            )

    def _link_batch(self, batch: list[_Pending]) -> None:
        """In a worker thread: each message's index columns, and its file linked into its
        accounts' directories; then every directory touched fsynced, once.  A failure is
        recorded on its own item."""
        blobs = self.ctx.blobs
        for item in batch:
            account_ids = sorted({a for ids in item.targets.values() for a in ids})
            try:
                item.values = index_values(item.parsed)
                for account_id in account_ids:
                    item.linked[account_id] = blobs.link(item.blob.path, account_id, "new")
            except Exception as e:
                item.error = e
                blobs.remove(item.linked.values())
                item.linked = {}
        try:
            blobs.sync_dirs(p for item in batch for p in item.linked.values())
        except Exception as e:
            for item in batch:
                if item.error is None:
                    item.error = e
                    blobs.remove(item.linked.values())
                    item.linked = {}
            return
        for item in batch:  # linked and durable where it goes: the source is not needed
            if item.error is None and not item.keep_source:
                blobs.remove_incoming(item.blob.path)

    async def _add_all(self, items: Sequence[_Pending]) -> None:
        """Add every message in one statement; if that fails as a whole, add each alone.
        Never raises: a failure is recorded on the message it belongs to.

        A lost connection fails every message not yet committed, and keeps its links: the
        statement may have committed without our hearing it, and a committed row must never
        lose its file (an orphan file is only swept at start-up, after a grace period).
        """
        try:
            await self._add(items)
            return
        except (StoreUnavailable, psycopg.OperationalError) as e:
            for item in items:
                item.error, item.keep_links = e, True
            return
        except Exception as e:  # one transaction failed as a whole: nothing committed
            log.info(
                "batch of {count} deliveries failed ({error}): each alone",
                count=len(items),
                error=str(e),
            )
        for item in items:
            item.added = {}
            try:
                await self._add([item])
            except (StoreUnavailable, psycopg.OperationalError) as e:
                item.error, item.keep_links = e, True
            except Exception as e:
                item.error = e

    async def _add(self, items: Sequence[_Pending]) -> None:
        """One autocommit statement adding every (message, account) pair of *items*."""
        rows = sorted(
            (account_id, i, path)
            for i, item in enumerate(items)
            for account_id, path in item.linked.items()
        )
        if not rows:
            return
        now = now_local()
        columns: list[list[Any]] = [[] for _ in _ROW_ARRAYS]
        for account_id, i, path in rows:
            item = items[i]
            fixed = (i, account_id, path, item.mailbox, item.blob.size, now)
            for column, value in zip(columns, (*fixed, *item.values.values())):
                column.append(value)
        async with self.ctx.db.connection() as conn:
            # binary parameters (%b): the arrays' texts are sent as they are, unquoted
            cur = await conn.execute(_ADD_ALL, (*columns, self.ctx.channel))
            result = await cur.fetchall()
        for row in result:
            items[row["item"]].added[row["account_id"]] = row
