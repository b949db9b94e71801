#!/usr/bin/env python3
"""Run every benchmark in ``bench/`` in turn with modest settings and print what each
reports (nothing is written anywhere: copy the sections you keep into
docs/benchmarks.md by hand, with the machine and its load).

    python bench/run_all.py [NAME ...] [--list]

NAMEs select benchmarks by file name without ``.py`` (default: all of them).  A benchmark
that fails is reported and the others still run; the exit status is 1 if any failed.
Benchmarks found in ``bench/`` but not listed in :data:`MODEST` run with their own
defaults.  ``tox -e bench`` runs this.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: Small, quick settings per benchmark (each one's own defaults are for the record runs).
MODEST: dict[str, list[str]] = {
    "store_deliver": ["--messages", "1000", "--concurrency", "10"],
    "smtp_accept": ["--messages", "500", "--concurrency", "10"],
    "pop3_retr": ["--rounds", "3", "--small", "300"],
    "imap_ops": ["--clients", "2", "--messages", "300", "--ops", "30", "--idle", "100"],
    "http_api": ["--messages", "1000", "--duration", "5", "--connections", "20"],
}

#: Files in bench/ that are helpers, not benchmarks.
NOT_BENCHMARKS = {"run_all", "common"}


def benchmarks() -> list[str]:
    """The benchmark names found in bench/, in a stable order."""
    return sorted(
        path.stem
        for path in BENCH.glob("*.py")
        if path.stem not in NOT_BENCHMARKS and not path.stem.startswith("_")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    args = parser.parse_args()
    found = benchmarks()
    if args.list:
        print("\n".join(found))
        return 0
    unknown = sorted(set(args.names) - set(found))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(found)})")
    failed = []
    for name in args.names or found:
        command = [sys.executable, str(BENCH / f"{name}.py"), *MODEST.get(name, [])]
        print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
        started = time.monotonic()
        done = subprocess.run(command, check=False)
        print(f"\n({name}: exit {done.returncode}, {time.monotonic() - started:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
