"""``twistd a3mail``: command-line options and makeService().

makeService installs the asyncio reactor, reads the configuration, prepares the data
directory and TLS certificate, starts the embedded PostgreSQL when no DSN is configured,
checks the database and applies migrations, then returns the service tree.  Any problem
stops the start with one line naming the key and the problem (no traceback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from a3mail.listeners import FactoryBuilder


class Options(usage.Options):
    """Options of ``twistd a3mail``."""

    synopsis = "[--config FILE] [--data-dir DIR]"
    optParameters = [
        ["config", "c", None, "configuration file (TOML); none: built-in defaults"],
        ["data-dir", "d", None, "data directory (overrides data_dir in the file)"],
    ]
    longdesc = (
        "a3mail: SMTP, IMAP4, POP3 and an HTTP API over PostgreSQL and maildir. "
        "With no database configured it runs an embedded PostgreSQL in the data directory."
    )


class StartError(SystemExit):
    """A start-up problem: exits with status 1 printing one line, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"a3mail: {message}")


def makeService(
    options: Mapping[str, Any],
    *,
    endpoint_factory: Any = None,
    protocols: Mapping[str, FactoryBuilder] | None = None,
) -> IService:
    """Build the a3mail service tree (see the module docstring)."""
    from a3mail.reactor import ReactorError, install_asyncio_reactor

    try:
        install_asyncio_reactor()
    except ReactorError as e:
        raise StartError(str(e)) from None
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    from a3mail.config import ConfigError, load_config
    from a3mail.runtime import Runtime
    from a3mail.service import A3MailService
    from a3mail.tls import ServerTLS, TLSConfigError

    try:
        config = load_config(options.get("config"), data_dir=options.get("data-dir"))
    except ConfigError as e:
        raise StartError(str(e)) from None
    _prepare_data_dir(config.data_dir)
    from a3mail.manhole import ManholeConfigError, check_manhole

    try:
        check_manhole(config)
    except ManholeConfigError as e:
        raise StartError(str(e)) from None
    try:
        tls = ServerTLS.from_config(config.tls, config.hostname)
    except TLSConfigError as e:
        raise StartError(str(e)) from None
    embedded, store = open_store(config, reactor, server=True)
    runtime = Runtime(config=config, store=store, tls=tls, reactor=reactor)
    return A3MailService(
        runtime,
        endpoint_factory=endpoint_factory or serverFromString,
        embedded=embedded,
        protocols=protocols,
        handle_signals=True,
    )


def _prepare_data_dir(path: Any) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is not writable")
    except OSError as e:
        raise StartError(f"data_dir: cannot use {path}: {e.strerror or e}") from None


def open_store(config: Any, reactor: Any, *, server: bool, migrate: bool = True) -> tuple[Any, Any]:
    """Start the embedded PostgreSQL if needed, check the database, apply migrations.

    Runs before the reactor: the asyncio loop is driven here until the checks are done.
    Returns (embedded server or None, a Store not yet opened).  Shared with the CLI.
    """
    from a3mail.store import Database, Store, StoreError
    from a3mail.store import migrate as migrations
    from a3mail.store.embedded import EmbeddedDatabaseError, EmbeddedPostgres
    from a3mail.store.store import server_application_name

    embedded = None
    dsn = config.database.dsn
    if config.database.dsn_is_embedded:
        embedded = EmbeddedPostgres(config.pgdata)
        try:
            dsn = embedded.start()
        except EmbeddedDatabaseError as e:
            raise StartError(f"database: {e}") from None

    def database() -> Database:
        return Database(
            dsn,
            min_size=config.database.pool_min if server else 1,
            max_size=config.database.pool_max if server else 2,
            acquire_timeout=config.database.connect_timeout,
            statement_timeout=config.database.statement_timeout,
            schema=config.database.schema,
            application_name=server_application_name() if server else "a3mail-cli",
        )

    async def preflight() -> None:
        db = database()
        await db.open()
        try:
            if migrate:
                await migrations.migrate(db)
        finally:
            await db.close()

    loop = reactor._asyncioEventloop
    if loop.is_running():
        # Built inside a running reactor (tests, embedding): the service migrates on start.
        return embedded, Store(
            database(),
            config.data_dir,
            fsync=config.store.maildir_fsync,
            recipient_delimiter=config.store.recipient_delimiter,
        )
    try:
        loop.run_until_complete(preflight())
    except (StoreError, OSError, RuntimeError) as e:
        if embedded is not None:
            embedded.stop()
        where = "database" if embedded is not None else "database.dsn"
        raise StartError(f"{where}: {getattr(e, 'reason', e)}") from None
    except Exception as e:  # psycopg errors during migration, e.g. permissions
        if embedded is not None:
            embedded.stop()
        raise StartError(f"database: {type(e).__name__}: {str(e).strip()}") from None
    store = Store(
        database(),
        config.data_dir,
        fsync=config.store.maildir_fsync,
        recipient_delimiter=config.store.recipient_delimiter,
    )
    return embedded, store
