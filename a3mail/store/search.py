"""IMAP SEARCH over the message index in one SQL statement, and the records FETCH renders.

The criteria tree (:mod:`a3mail.store.searchkeys`) becomes ONE WHERE clause, composed with
:mod:`psycopg.sql` and placeholders (no client value is ever pasted into SQL text):

- flags: the ``flags`` bitmask; keywords: the ``keywords`` array, case-insensitively;
- BEFORE/ON/SINCE: ``internal_date`` as a UTC calendar date; SENT*: the Date header's own
  calendar date (the parse keeps its offset), else ``sent_date`` in UTC;
- FROM/TO/SUBJECT: the decoded ``from_addr``/``to_addr``/``subject`` columns;
- CC/BCC/HEADER: the decoded header fields of the parse (``parsed->'headers'``, parser
  version 2); rows parsed before that fall back to the cached address lists and columns;
- BODY: the decoded text (``body_text``: text parts, else the HTML as text); TEXT: the
  headers, then the body;
- substring matches are case-insensitive (``strpos(lower(..), lower(..))``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import attrs
from psycopg import sql
from psycopg.rows import tuple_row

from a3mail.store.context import StoreContext
from a3mail.store.db import deferred
from a3mail.store.records import flag_names
from a3mail.store.searchkeys import (
    AgeKey,
    All,
    And,
    DateKey,
    FlagKey,
    Key,
    KeywordKey,
    ModSeqKey,
    Not,
    Nothing,
    Or,
    SavedKey,
    SequenceKey,
    SizeKey,
    TextKey,
    UidKey,
)

#: fetch_info reads at most this many rows per statement.
FETCH_CHUNK = 1000
#: fetch_flags reads at most this many messages per statement.
FLAGS_CHUNK = 20_000


@attrs.frozen
class SearchResult:
    """The UIDs matching a search, ascending, and the highest MODSEQ among them (None when
    nothing matched)."""

    uids: tuple[int, ...]
    highest_modseq: int | None


class FetchRecord(NamedTuple):
    """What FETCH renders of a message's index entry: :data:`FETCH_COLUMNS`, a subset of
    ``MessageInfo`` (reading every index column for 500 messages costs FETCH more than
    twice as much), plus, when asked, what it needs of the cached parse: ``parsed`` holds
    the ``envelope``, ``body`` (the tree with byte offsets) and ``header_size`` of
    ``a3mail.mime.ParsedMessage.to_json()`` (None values for a message stored without a
    parse).  A named tuple: FETCH builds hundreds of them per statement."""

    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]
    internal_date: datetime
    size: int
    blob_path: str
    header_size: int
    parsed: dict[str, Any] | None = None

    @property
    def flag_names(self) -> tuple[str, ...]:
        """IMAP flag names of this message."""
        return flag_names(self.flags, self.keywords)


class SortRecord(NamedTuple):
    """What SORT (RFC 5256) compares of one message, from :meth:`MessageSearch.sort_keys`."""

    uid: int
    internal_date: datetime
    sent_date: datetime | None
    size: int
    subject: str
    from_mailbox: str
    to_mailbox: str
    cc_mailbox: str


class ThreadRecord(NamedTuple):
    """What THREAD (RFC 5256) needs of one message, from :meth:`MessageSearch.thread_keys`."""

    uid: int
    internal_date: datetime
    sent_date: datetime | None
    subject: str
    message_id: str | None
    in_reply_to: str | None
    references: str | None


@attrs.frozen
class FlagsRecord:
    """The flags of one message (what ``FETCH 1:* (FLAGS)`` needs), from :meth:`fetch_flags`."""

    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]

    @property
    def flag_names(self) -> tuple[str, ...]:
        """IMAP flag names of this message."""
        return flag_names(self.flags, self.keywords)


class HasRoot(Protocol):
    """Anything with a criteria tree in ``root`` (``a3mail.imap.searchspec.SearchQuery``)."""

    @property
    def root(self) -> Key:
        """The criteria tree."""


class MessageSearch:
    """SEARCH and FETCH reads for the IMAP front (``store.search``)."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @deferred
    async def search(self, account_id: int, mailbox_id: int, query: Key | HasRoot) -> SearchResult:
        """The messages of one mailbox (of this account) matching *query*, evaluated in one
        SQL statement.  *query* is a resolved ``SearchQuery`` (or its ``root``): sequence-set
        keys must have been turned into UID sets first (``SearchQuery.resolve``), else
        ValueError."""
        root: Key = getattr(query, "root", query)  # type: ignore[arg-type]
        builder = _Builder()
        where = builder.key(root)
        sets = sql.SQL(", ").join(
            sql.SQL("({}) AS {}").format(expr, sql.Identifier(name))
            for name, expr in builder.uid_sets.items()
        )
        statement = sql.SQL(
            "WITH lim AS (SELECT coalesce(max(uid), 0) AS top FROM messages"
            " WHERE account_id = %(account)s AND mailbox_id = %(mailbox)s),"
            " sets AS (SELECT {sets} FROM lim)"
            " SELECT m.uid, m.modseq FROM messages m CROSS JOIN sets"
            " WHERE m.account_id = %(account)s AND m.mailbox_id = %(mailbox)s AND ({where})"
            " ORDER BY m.uid"
        ).format(sets=sets if builder.uid_sets else sql.SQL("lim.top"), where=where)
        params = {"account": account_id, "mailbox": mailbox_id, **builder.params}
        async with self.ctx.db.connection() as conn:
            cur = await conn.execute(statement, params)
            rows: list[Any] = await cur.fetchall()
        uids = tuple(r["uid"] for r in rows)
        highest = max((r["modseq"] for r in rows), default=None)
        return SearchResult(uids, highest)

    @deferred
    async def fetch_info(
        self, account_id: int, mailbox_id: int, uids: Sequence[int], with_parsed: bool = False
    ) -> list[FetchRecord]:
        """The records of the messages with these UIDs that still exist, in UID order, with
        the cached parse when *with_parsed*.  Reads :data:`FETCH_CHUNK` rows per statement;
        call it per chunk of a big FETCH so that 100k messages are never loaded at once."""
        columns = _SELECT_INFO + (f", {_SELECT_PARSED}" if with_parsed else "")
        rows = await self._rows_by_uid(columns, account_id, mailbox_id, uids)
        return [_record(row, with_parsed) for row in rows]

    @deferred
    async def sort_keys(
        self, account_id: int, mailbox_id: int, uids: Sequence[int]
    ) -> list[SortRecord]:
        """What SORT compares of the messages with these UIDs that still exist, in UID
        order: dates, size, decoded subject, and the local part of the first From, To and
        Cc address (from the cached envelope; empty when there is none)."""
        rows = await self._rows_by_uid(_SORT_COLUMNS, account_id, mailbox_id, uids)
        return [SortRecord._make(row) for row in rows]

    @deferred
    async def thread_keys(
        self, account_id: int, mailbox_id: int, uids: Sequence[int]
    ) -> list[ThreadRecord]:
        """What THREAD needs of the messages with these UIDs that still exist, in UID
        order: dates, decoded subject, Message-ID, In-Reply-To (from the cached envelope)
        and References (from the cached header fields)."""
        rows = await self._rows_by_uid(_THREAD_COLUMNS, account_id, mailbox_id, uids)
        return [ThreadRecord._make(row) for row in rows]

    async def _rows_by_uid(
        self, columns: str, account_id: int, mailbox_id: int, uids: Sequence[int]
    ) -> list[tuple[Any, ...]]:
        """*columns* of the messages with these UIDs, in UID order, :data:`FETCH_CHUNK`
        rows per statement.  Each statement selects the chunk's UID range, plus
        ``uid = ANY(..)`` when it has gaps; not a join with unnest(..), whose generic plan
        (psycopg prepares repeated statements) took 3-4 times as long for 500 messages."""
        wanted = sorted({int(u) for u in uids})
        out: list[tuple[Any, ...]] = []
        async with self.ctx.db.connection() as conn:
            for start in range(0, len(wanted), FETCH_CHUNK):
                chunk = wanted[start : start + FETCH_CHUNK]
                first, last = chunk[0], chunk[-1]
                gaps = last - first + 1 != len(chunk)  # wanted is sorted and unique
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(
                    f"SELECT {columns} FROM messages m"
                    " WHERE m.account_id = %s AND m.mailbox_id = %s AND m.uid BETWEEN %s AND %s"
                    + (" AND m.uid = ANY(%s)" if gaps else "")
                    + " ORDER BY m.uid",
                    (account_id, mailbox_id, first, last, *([chunk] if gaps else [])),
                )
                out.extend(await cur.fetchall())
        return out

    @deferred
    async def fetch_flags(
        self, account_id: int, mailbox_id: int, uids: Sequence[int]
    ) -> list[FlagsRecord]:
        """UID, MODSEQ and flags of the messages with these UIDs that still exist, in UID
        order: the fast path for FETCHes that ask only FLAGS/UID/MODSEQ
        (``FetchSpec.flags_only``).  Reads :data:`FLAGS_CHUNK` messages per statement as four
        arrays (one row), so 100k messages cost a few hundred milliseconds."""
        wanted = sorted({int(u) for u in uids})
        out: list[FlagsRecord] = []
        async with self.ctx.db.connection() as conn:
            for start in range(0, len(wanted), FLAGS_CHUNK):
                chunk = wanted[start : start + FLAGS_CHUNK]
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(
                    "SELECT array_agg(m.uid ORDER BY m.uid), array_agg(m.modseq ORDER BY m.uid),"
                    " array_agg(m.flags ORDER BY m.uid),"
                    " array_agg(array_to_string(m.keywords, ' ') ORDER BY m.uid)"
                    " FROM unnest(%s::bigint[]) AS w(uid) JOIN messages m ON m.uid = w.uid"
                    " WHERE m.account_id = %s AND m.mailbox_id = %s",
                    (chunk, account_id, mailbox_id),
                )
                row = await cur.fetchone()
                if row is None or row[0] is None:
                    continue
                for uid, modseq, flags, keywords in zip(*row, strict=True):
                    out.append(FlagsRecord(uid, modseq, flags, tuple(keywords.split())))
        return out


#: The index columns FETCH reads: :class:`FetchRecord`'s fields, in order.
FETCH_COLUMNS = FetchRecord._fields[:-1]
_KEYWORDS = FETCH_COLUMNS.index("keywords")
assert _KEYWORDS == 3 and FetchRecord._fields[-1] == "parsed"
_FIELDS = len(FETCH_COLUMNS)
_SELECT_INFO = ", ".join(f"m.{name}" for name in FETCH_COLUMNS)
_SORT_COLUMNS = (
    "m.uid, m.internal_date, m.sent_date, m.size, m.subject,"
    " coalesce(m.parsed->'envelope'->'from'->0->>'mailbox', ''),"
    " coalesce(m.parsed->'envelope'->'to'->0->>'mailbox', ''),"
    " coalesce(m.parsed->'envelope'->'cc'->0->>'mailbox', '')"
)
_THREAD_COLUMNS = (
    "m.uid, m.internal_date, m.sent_date, m.subject, m.message_id,"
    " m.parsed->'envelope'->>'in_reply_to',"
    " (SELECT h->>1 FROM jsonb_array_elements(CASE jsonb_typeof(m.parsed->'headers')"
    " WHEN 'array' THEN m.parsed->'headers' ELSE '[]' END) AS h"
    " WHERE h->>0 = 'references' LIMIT 1)"
)
# Only the parts of the parse FETCH renders (not the header fields kept for SEARCH, etc.).
_SELECT_PARSED = (
    "jsonb_build_object('envelope', m.parsed->'envelope',"
    " 'body', m.parsed->'body', 'header_size', m.parsed->'header_size')"
)


def _record(row: tuple[Any, ...], with_parsed: bool) -> FetchRecord:
    """A FetchRecord from a row of :data:`FETCH_COLUMNS` [+ parsed] (positional: fast)."""
    parsed = None
    if with_parsed:
        parsed = row[_FIELDS] if isinstance(row[_FIELDS], dict) else {}
    return FetchRecord._make((*row[:3], tuple(row[3] or ()), *row[4:_FIELDS], parsed))


# -- the WHERE clause ----------------------------------------------------------------------

_SENT_DATE = (
    "coalesce(CASE WHEN m.parsed->>'date' ~ '^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"
    " THEN substr(m.parsed->>'date', 1, 10)::date END,"
    " (m.sent_date AT TIME ZONE 'UTC')::date)"
)
_INTERNAL_DATE = "(m.internal_date AT TIME ZONE 'UTC')::date"
_HEADERS = (
    "jsonb_array_elements(CASE WHEN jsonb_typeof(m.parsed->'headers') = 'array'"
    " THEN m.parsed->'headers' ELSE '[]'::jsonb END)"
)
_HAS_HEADERS = "jsonb_typeof(m.parsed->'headers') = 'array'"
# Where rows parsed before headers were kept (parser version 1) look for some fields.
_OLD_HEADER_COLUMNS = {
    "subject": "m.subject",
    "from": "m.from_addr",
    "to": "m.to_addr",
    "cc": "(m.parsed->'cc')::text",
    "bcc": "(m.parsed->'envelope'->'bcc')::text",
}
_COLUMNS = {"subject": "m.subject", "from": "m.from_addr", "to": "m.to_addr"}
_OPS = {"before": "<", "on": "=", "since": ">=", "larger": ">", "smaller": "<"}


class _Builder:
    """Turns a criteria tree into SQL, collecting the parameters in placeholder order."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        # CTE column name -> the multirange expression of one UID set.
        self.uid_sets: dict[str, sql.Composable] = {}

    def p(self, value: Any) -> sql.Composable:
        """A (named) placeholder for *value*."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def contains(self, column: str, needle: str) -> sql.Composable:
        return sql.SQL("strpos(lower({}), lower({})) > 0").format(sql.SQL(column), self.p(needle))

    def key(self, key: Key) -> sql.Composable:
        if isinstance(key, And):
            if not key.keys:
                return sql.SQL("true")
            return (
                sql.SQL("(") + sql.SQL(" AND ").join(self.key(k) for k in key.keys) + sql.SQL(")")
            )
        if isinstance(key, Or):
            return sql.SQL("({} OR {})").format(self.key(key.left), self.key(key.right))
        if isinstance(key, Not):
            return sql.SQL("NOT {}").format(self.key(key.key))
        return sql.SQL("coalesce({}, false)").format(self.leaf(key))

    def leaf(self, key: Key) -> sql.Composable:
        if isinstance(key, All):
            return sql.SQL("true")
        if isinstance(key, Nothing):
            return sql.SQL("false")
        if isinstance(key, FlagKey):
            test = "<> 0" if key.present else "= 0"
            return sql.SQL("(m.flags & {}) " + test).format(self.p(key.bit))
        if isinstance(key, KeywordKey):
            exists = "EXISTS" if key.present else "NOT EXISTS"
            return sql.SQL(
                exists + " (SELECT 1 FROM unnest(m.keywords) k WHERE lower(k) = lower({}))"
            ).format(self.p(key.keyword))
        if isinstance(key, DateKey):
            column = _INTERNAL_DATE if key.field == "internal" else _SENT_DATE
            return sql.SQL(f"{column} {_OPS[key.op]} {{}}").format(self.p(key.date))
        if isinstance(key, SizeKey):
            return sql.SQL(f"m.size {_OPS[key.op]} {{}}").format(self.p(key.size))
        if isinstance(key, AgeKey):
            test = ">" if key.op == "younger" else "<="
            return sql.SQL(
                f"m.internal_date {test} now() - {{}}::bigint * interval '1 second'"
            ).format(self.p(key.seconds))
        if isinstance(key, ModSeqKey):
            return sql.SQL("m.modseq >= {}").format(self.p(key.modseq))
        if isinstance(key, UidKey):
            return self.uids(key)
        if isinstance(key, TextKey):
            return self.text(key)
        if isinstance(key, SequenceKey | SavedKey):
            raise ValueError("resolve sequence numbers and $ to UIDs before searching")
        raise ValueError(f"unknown search key {key!r}")

    def uids(self, key: UidKey) -> sql.Composable:
        """Membership in a multirange built once per statement (in the ``sets`` CTE), so
        each row costs a binary search however many ranges the set has."""
        if not key.ranges:
            return sql.SQL("false")
        lows = [-1 if a is None else a for a, _b in key.ranges]
        highs = [-1 if b is None else b for _a, b in key.ranges]
        name = f"s{len(self.uid_sets)}"
        self.uid_sets[name] = sql.SQL(
            "SELECT range_agg(int8range(least(x.a, x.b), greatest(x.a, x.b), '[]')) FROM"
            " (SELECT coalesce(nullif(r.lo, -1), lim.top) AS a,"
            " coalesce(nullif(r.hi, -1), lim.top) AS b"
            " FROM unnest({}::bigint[], {}::bigint[]) r(lo, hi)) x"
        ).format(self.p(lows), self.p(highs))
        return sql.SQL("sets.{} @> m.uid").format(sql.Identifier(name))

    def text(self, key: TextKey) -> sql.Composable:
        if key.field in _COLUMNS:
            return self.contains(_COLUMNS[key.field], key.needle)
        if key.field == "body":
            return self.contains("m.body_text", key.needle)
        if key.field in ("cc", "bcc", "header"):
            name = key.header if key.field == "header" else key.field
            return self.header(name, key.needle)
        if key.field == "text":
            in_headers = sql.SQL(
                f"EXISTS (SELECT 1 FROM {_HEADERS} h"
                " WHERE strpos(lower((h->>0) || ': ' || (h->>1)), lower({})) > 0)"
            ).format(self.p(key.needle))
            old = sql.SQL(" OR ").join(
                self.contains(column, key.needle) for column in _COLUMNS.values()
            )
            body = self.contains("m.body_text", key.needle)
            return sql.SQL(f"(CASE WHEN {_HAS_HEADERS} THEN {{}} ELSE ({{}}) END OR {{}})").format(
                in_headers, old, body
            )
        raise ValueError(f"unknown text field {key.field!r}")

    def header(self, name: str, needle: str) -> sql.Composable:
        current = sql.SQL(
            "EXISTS (SELECT 1 FROM " + _HEADERS + " h WHERE h->>0 = {}"
            " AND strpos(lower(h->>1), lower({})) > 0)"
        ).format(self.p(name), self.p(needle))
        old_column = _OLD_HEADER_COLUMNS.get(name)
        old = self.contains(old_column, needle) if old_column else sql.SQL("false")
        return sql.SQL("(CASE WHEN " + _HAS_HEADERS + " THEN {} ELSE {} END)").format(current, old)
