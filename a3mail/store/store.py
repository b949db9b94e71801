"""The store: one object giving the rest of a3mail every table group, the files and the bus."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from a3mail.store import migrate as migrations
from a3mail.store.accounts import Accounts
from a3mail.store.audit import AuditLog
from a3mail.store.blobs import BlobStore, BlobWriter, IncomingBlob
from a3mail.store.blocklist import Blocklist
from a3mail.store.context import StoreContext
from a3mail.store.custom_metrics import CustomMetrics
from a3mail.store.db import Database, deferred
from a3mail.store.domains import Domains
from a3mail.store.events import EventBus, channel_for
from a3mail.store.events import encode as encode_event
from a3mail.store.freemail import Freemail
from a3mail.store.freemail_sent import FreemailSent
from a3mail.store.group_delivery import GroupDelivery
from a3mail.store.keys import ApiKeys
from a3mail.store.locks import SessionLocks
from a3mail.store.mailbox_state import MailboxStates
from a3mail.store.mailboxes import Mailboxes
from a3mail.store.messages import Messages
from a3mail.store.notices import OutboundNotices
from a3mail.store.outbound import OutboundDelivery
from a3mail.store.queue import OutboundQueue, sweep_queue_files
from a3mail.store.queue_admin import QueueAdmin
from a3mail.store.ratelimits import RateLimitCounters
from a3mail.store.recipients import Recipients
from a3mail.store.search import MessageSearch
from a3mail.store.security_report import SecurityReport
from a3mail.store.security_settings import SecuritySettings
from a3mail.store.spool import Spool
from a3mail.store.stats import Stats
from a3mail.store.summaries import MessageSummaries
from a3mail.store.sweep import SweepReport, sweep
from a3mail.store.tempmail import TempMail
from a3mail.store.webhooks import Webhooks

SERVER_APP_PREFIX = "a3mail-server:"


def server_application_name() -> str:
    """The PostgreSQL application_name of this server process (unique per process)."""
    return f"{SERVER_APP_PREFIX}{socket.gethostname()}:{os.getpid()}"[:63]


class Store:
    """Domains, accounts, mailboxes, messages, API keys and the audit log over one database
    and one data directory.  Every method returns a Deferred."""

    def __init__(
        self, db: Database, data_dir: Path, *, fsync: bool = True, recipient_delimiter: str = "+"
    ) -> None:
        self.db = db
        self.blobs = BlobStore(data_dir, fsync=fsync)
        self.ctx = StoreContext(
            db, self.blobs, channel_for(db.schema), recipient_delimiter=recipient_delimiter
        )
        self.domains = Domains(self.ctx)
        self.accounts = Accounts(self.ctx)
        self.mailboxes = Mailboxes(self.ctx)
        self.mailbox_states = MailboxStates(self.ctx)
        self.messages = Messages(self.ctx)
        self.group_delivery = GroupDelivery(self.ctx)
        self.audit = AuditLog(self.ctx)
        self.events = EventBus(db, self.ctx.channel)
        self.keys = ApiKeys(self.ctx, self.events)
        self.queue = OutboundQueue(self.ctx)
        self.queue_admin = QueueAdmin(self.ctx)
        self.outbound = OutboundDelivery(self.ctx)
        self.notices = OutboundNotices(self.ctx)
        self.ratelimits = RateLimitCounters(self.ctx)
        self.stats = Stats(self.ctx)
        self.summaries = MessageSummaries(self.ctx)
        self.search = MessageSearch(self.ctx)
        self.recipients = Recipients(self.ctx)
        self.spool = Spool(self.ctx)
        self.locks = SessionLocks(db)
        self.webhooks = Webhooks(self.ctx)
        self.tempmail = TempMail(self.ctx)
        self.freemail = Freemail(self.ctx)
        self.freemail_sent = FreemailSent(self.ctx)
        self.blocklist = Blocklist(self.ctx)
        self.security = SecuritySettings(self.ctx)
        self.security_report = SecurityReport(self.ctx)
        self.custom_metrics = CustomMetrics(self.ctx)

    @deferred
    async def open(self, *, migrate: bool = True, listen: bool = True) -> None:
        """Connect, apply pending migrations, prepare the mail tree, start the event bus."""
        await self.db.open()
        try:
            if migrate:
                await migrations.migrate(self.db)
            await self.ctx.in_thread(self.blobs.prepare)
        except BaseException:
            await self.db.close()
            raise
        if listen:
            self.events.start()

    @deferred
    async def close(self) -> None:
        """Stop the event bus, drop the session locks and close the pool."""
        try:
            await self.events.stop()
        finally:
            try:
                await self.locks.close()
            finally:
                await self.db.close()

    @deferred
    async def ping(self) -> float:
        """One round trip to the database (``SELECT 1``); returns how long it took, in s."""
        started = time.perf_counter()
        await self.db.fetchone("SELECT 1 AS one")
        return time.perf_counter() - started

    @deferred
    async def resize_pool(self, max_size: int) -> tuple[int, int]:
        """Change the connection pool's maximum size (its minimum follows if larger);
        returns the new (min, max)."""
        pool = self.db.pool
        await pool.resize(min(pool.min_size, max_size), max_size)
        return pool.min_size, pool.max_size

    @deferred
    async def migration_status(self) -> migrations.MigrationStatus:
        """Applied and pending schema migrations."""
        return await migrations.status(self.db)

    @deferred
    async def migrate(self) -> list[migrations.Migration]:
        """Apply pending migrations; returns those applied."""
        return await migrations.migrate(self.db)

    @deferred
    async def sweep(self, grace: float | None = None, default_grace: float = 900.0) -> SweepReport:
        """Remove files written but never committed, and report rows whose file is missing.

        With *grace* None: 0 when no other a3mail server is connected to the database,
        else *default_grace* seconds (so files another process is delivering are spared).
        """
        if grace is None:
            grace = default_grace if await self._other_servers() else 0.0
        report = await sweep(self.ctx, grace)
        await sweep_queue_files(self.ctx, grace)
        return report

    @deferred
    async def publish(self, event_type: str, **data: object) -> None:
        """Announce an event that goes with no change of ours (e.g. ``smtp.rejected``) on the
        bus, through NOTIFY like every other event."""
        async with self.db.transaction() as conn:
            await self.ctx.publish(conn, event_type, **data)

    @deferred
    async def publish_all(self, events: Sequence[tuple[str, Mapping[str, object]]]) -> None:
        """Announce several such events in one transaction (type, data) pairs, in order."""
        if events:  # one autocommit statement: one round trip, no BEGIN/COMMIT
            await self.db.execute(
                "SELECT pg_notify(%s, p) FROM unnest(%b::text[]) WITH ORDINALITY AS t(p, n)"
                " ORDER BY n",
                (self.ctx.channel, [encode_event(t, dict(d)) for t, d in events]),
            )

    async def _other_servers(self) -> bool:
        row = await self.db.fetchone(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE %s AND application_name <> %s",
            (SERVER_APP_PREFIX + "%", self.db.application_name),
        )
        return bool(row and row["n"])

    def writer(self) -> BlobWriter:
        """A writer streaming a new incoming message into ``mail/tmp`` (see blobs)."""
        return self.blobs.writer()

    @deferred
    async def finish_writer(self, writer: BlobWriter) -> IncomingBlob:
        """fsync a streamed message in a worker thread and return it for delivery."""
        return await self.ctx.in_thread(writer.finish)

    @deferred
    async def incoming(self, data: bytes) -> IncomingBlob:
        """Write a complete message from memory into ``mail/tmp`` (fsynced)."""
        return await self.ctx.in_thread(self.blobs.write_bytes, data)
