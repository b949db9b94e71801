"""A real ``twistd -n a3mail`` child process for the tests that run the whole program."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
TWISTD = "from twisted.scripts.twistd import run; run()"

Found = TypeVar("Found")


class TwistdProcess:
    """``twistd -n a3mail`` with *args*, run in *workdir* with this tree on PYTHONPATH
    (and *env* added to the environment); its output is collected line by line."""

    def __init__(self, workdir: Path, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "a3mail", *args],
            cwd=workdir,
            env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def first_match(self, match: Callable[[str], Found | None], timeout: float) -> Found | None:
        """Read output lines until *match* finds something in one (returned), the output
        ends or *timeout* seconds pass (None)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            found = match(line)
            if found is not None:
                return found
        return None
