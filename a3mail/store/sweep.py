"""The start-up sweep: remove files that were written but never committed, and report index
rows whose file is missing."""

from __future__ import annotations

import attrs

from a3mail.logs import get_logger
from a3mail.store.context import StoreContext

log = get_logger(__name__)


@attrs.frozen
class MissingFile:
    """An index row whose message file is gone."""

    account_id: int
    mailbox_id: int
    uid: int
    blob_path: str


@attrs.frozen
class SweepReport:
    """What a sweep found and did."""

    removed_incoming: int
    removed_orphans: int
    removed_account_dirs: int
    missing: tuple[MissingFile, ...]


async def sweep(ctx: StoreContext, grace: float) -> SweepReport:
    """Remove uncommitted files older than *grace* seconds; report rows without a file.

    With *grace* 0 every file not referenced by the index goes: use that only when no other
    a3mail process can be delivering into the same data directory.
    """
    blobs = ctx.blobs
    incoming = await ctx.in_thread(lambda: [p for p in blobs.tmp_files() if blobs.age(p) >= grace])
    await ctx.in_thread(blobs.remove_paths, incoming)
    on_disk = await ctx.in_thread(lambda: sorted(set(blobs.account_ids_on_disk())))
    rows = await ctx.db.fetchall("SELECT id FROM accounts")
    known = {r["id"] for r in rows}
    gone_dirs = 0
    for account_id in on_disk:
        if account_id not in known:
            # The account was deleted (its rows are gone) but its files were not removed.
            await ctx.in_thread(blobs.remove_account, account_id)
            gone_dirs += 1
    orphans = 0
    missing: list[MissingFile] = []
    for account_id in sorted(known):
        indexed = await ctx.db.fetchall(
            "SELECT mailbox_id, uid, blob_path FROM messages WHERE account_id = %s",
            (account_id,),
        )
        paths = {r["blob_path"] for r in indexed}
        files = await ctx.in_thread(lambda a=account_id: set(blobs.account_files(a)))
        stale = [f for f in files - paths if blobs.age(f) >= grace]
        await ctx.in_thread(blobs.remove, stale)
        orphans += len(stale)
        missing += [
            MissingFile(account_id, r["mailbox_id"], r["uid"], r["blob_path"])
            for r in indexed
            if r["blob_path"] not in files
        ]
    report = SweepReport(len(incoming), orphans, gone_dirs, tuple(missing))
    if report.removed_incoming or report.removed_orphans or report.removed_account_dirs:
        log.info(
            "sweep removed {incoming} incoming, {orphans} orphan files, {dirs} account dirs",
            incoming=report.removed_incoming,
            orphans=report.removed_orphans,
            dirs=report.removed_account_dirs,
        )
    for m in report.missing:
        log.error(
            "message file missing: account {account} mailbox {mailbox} uid {uid}: {path}",
            account=m.account_id,
            mailbox=m.mailbox_id,
            uid=m.uid,
            path=m.blob_path,
        )
    return report
