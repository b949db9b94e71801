"""Helpers the protocol benchmarks share: the machine's description, and the PostgreSQL
a benchmark's store runs on (an embedded one, or a fresh schema in --dsn)."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM, OS, Python."""
    cpu = "unknown"
    ram = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def bench_database(args: argparse.Namespace, data_dir: Path, prefix: str) -> Iterator[None]:
    """Set ``args.dsn`` and ``args.schema`` for the benchmark's store: without --dsn an
    embedded PostgreSQL in *data_dir* (schema ``public``), stopped at the end; with it a
    fresh schema named *prefix* and the process id, dropped at the end."""
    from a3mail.store.embedded import EmbeddedPostgres

    embedded = None
    args.schema = "public"
    if not args.dsn:
        print(f"starting an embedded PostgreSQL in {data_dir} ...", file=sys.stderr)
        embedded = EmbeddedPostgres(data_dir / "pgdata")
        args.dsn = embedded.start()
    else:
        import psycopg

        args.schema = f"{prefix}_{os.getpid()}"
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {args.schema}")
    try:
        yield
    finally:
        if embedded is not None:
            embedded.stop()
        elif args.schema != "public":
            import psycopg

            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {args.schema} CASCADE")


def bench_config(args: argparse.Namespace, data_dir: Path, **extra: object) -> Any:
    """The configuration a benchmark's a3mail runs with: hostname ``localhost``, the
    database of ``args.dsn``, passwords allowed in plain text on loopback, no maildir fsync;
    *extra* overrides more keys (dotted names, passed as a mapping)."""
    from a3mail.config import load_config

    return load_config(
        None,
        data_dir=data_dir,
        overrides={
            "hostname": "localhost",
            "database.dsn": args.dsn,
            "auth.allow_plaintext_loopback": True,
            "store.maildir_fsync": False,
            **extra,
        },
    )
