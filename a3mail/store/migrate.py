"""Numbered SQL migrations (``migrations/NNNN_name.sql``) applied in order.

Each migration runs in its own transaction together with the ``schema_version`` row that
records it, under an advisory lock, so concurrent starts never apply one twice.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import attrs
from psycopg import AsyncConnection

from a3mail.store.db import Database

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x0A3A11  # pg_advisory_xact_lock key for migrations


@attrs.frozen
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


@attrs.frozen
class MigrationStatus:
    """Which migrations are applied and which are pending."""

    applied: tuple[int, ...]
    pending: tuple[Migration, ...]

    @property
    def current(self) -> int:
        """The highest applied version (0 for an empty database)."""
        return max(self.applied, default=0)


def available_migrations() -> list[Migration]:
    """Every migration shipped with a3mail, in version order."""
    found = []
    for entry in resources.files("a3mail.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers are not contiguous: {versions}")
    return found


async def _ensure_version_table(conn: AsyncConnection[Any]) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )


async def _applied(conn: AsyncConnection[Any]) -> tuple[int, ...]:
    cur = await conn.execute("SELECT version FROM schema_version ORDER BY version")
    rows = await cur.fetchall()
    return tuple(int(_first(r)) for r in rows)


def _first(row: Any) -> Any:
    return row["version"] if isinstance(row, dict) else row[0]


async def status(db: Database) -> MigrationStatus:
    """Report applied and pending migrations (creates the empty version table if missing)."""
    async with db.transaction() as conn:
        await _ensure_version_table(conn)
        applied = await _applied(conn)
    pending = tuple(m for m in available_migrations() if m.version not in applied)
    return MigrationStatus(applied, pending)


async def migrate(db: Database) -> list[Migration]:
    """Apply every pending migration; return those applied now (empty when up to date)."""
    done: list[Migration] = []
    for migration in available_migrations():
        async with db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await _ensure_version_table(conn)
            if migration.version in await _applied(conn):
                continue
            await conn.execute(migration.sql.encode())  # type: ignore[arg-type]
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        done.append(migration)
    newest = max((m.version for m in available_migrations()), default=0)
    current = (await status(db)).current
    if current > newest:
        raise RuntimeError(
            f"the database schema is version {current}, newer than this a3mail ({newest})"
        )
    return done
