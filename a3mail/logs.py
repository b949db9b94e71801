"""a3mail's logging: its own events filtered by ``logging.level``, and an optional JSON-lines file.

Every a3mail module logs through ``log = get_logger(__name__)``.  Those events pass a level
filter (``logging.level``) before reaching Twisted's global log publisher, where twistd's
log file (or stdout with ``-n``) receives them.  ``logging.json_file`` adds an observer that
writes every event, a3mail's and Twisted's, as one JSON object per line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    jsonFileLogObserver,
)

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_observer = FilteringLogObserver(globalLogPublisher, [_predicate])


def get_logger(namespace: str) -> Logger:
    """A logger for an a3mail module whose events obey ``logging.level``."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(level: str) -> None:
    """Set the least severe level of a3mail's events that is logged."""
    _predicate.setLogLevelForNamespace("", LogLevel.levelWithName(level))


def add_json_file(path: Path, publisher: Any = globalLogPublisher) -> Callable[[], None]:
    """Also log every event as JSON lines to *path*; returns a function that stops it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by stop()
    observer = jsonFileLogObserver(stream, recordSeparator="")
    publisher.addObserver(observer)

    def stop() -> None:
        publisher.removeObserver(observer)
        stream.close()

    return stop
