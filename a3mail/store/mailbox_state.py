"""The compact state of a mailbox's messages an IMAP session keeps: UID, flags, modseq."""

from __future__ import annotations

import attrs
from psycopg.rows import tuple_row

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred


@attrs.frozen
class MessageState:
    """One message as a selected-mailbox view needs it."""

    uid: int
    flags: int
    keywords: tuple[str, ...]
    modseq: int


@attrs.frozen
class MailboxSnapshot:
    """Every message of a mailbox as parallel lists in UID order (cheap to build and keep);
    ``keywords`` only for the messages that have some."""

    uids: list[int]
    flags: list[int]
    modseqs: list[int]
    keywords: dict[int, tuple[str, ...]]


class MailboxStates:
    """Reads only the columns a session's view of a mailbox is made of (cheap SELECT)."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def messages(
        self, account_id: int, mailbox_id: int, *, min_uid: int = 1
    ) -> list[MessageState]:
        """The messages of a mailbox of the account from *min_uid* on, in UID order."""
        rows = await self.ctx.db.fetchall(
            "SELECT uid, flags, keywords, modseq FROM messages"
            " WHERE account_id = %s AND mailbox_id = %s AND uid >= %s ORDER BY uid",
            (account_id, mailbox_id, min_uid),
        )
        return [MessageState(r["uid"], r["flags"], tuple(r["keywords"]), r["modseq"]) for r in rows]

    @deferred
    async def snapshot(self, account_id: int, mailbox_id: int) -> MailboxSnapshot:
        """All messages of a mailbox of the account, read as three arrays in one row, with
        the keywords of the few messages that have some (one statement)."""
        async with self.ctx.db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                "SELECT array_agg(uid ORDER BY uid), array_agg(flags ORDER BY uid),"
                " array_agg(modseq ORDER BY uid),"
                " json_agg(json_build_array(uid, keywords)) FILTER (WHERE keywords <> '{}')"
                " FROM messages WHERE account_id = %s AND mailbox_id = %s",
                (account_id, mailbox_id),
            )
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return MailboxSnapshot([], [], [], {})
        keywords = {int(uid): tuple(words) for uid, words in row[3] or ()}
        return MailboxSnapshot(list(row[0]), list(row[1]), list(row[2]), keywords)
