"""a3mail's logging: its own events filtered by ``logging.level``, and an optional JSON-lines file.

Every a3mail module logs through ``log = get_logger(__name__)``.  Those events pass a level
filter (``logging.level``) before reaching Twisted's global log publisher, where twistd's
log file (or stdout with ``-n``) receives them.  ``logging.json_file`` adds an observer that
writes every event, a3mail's and Twisted's, as one JSON object per line.

Events logged while a protocol session is current (:func:`a3mail.sessions.current_session`)
carry ``session_id``, ``session_protocol`` and ``peer``; a3mail's events also get a
``log_system`` naming them, which twistd's text log shows between brackets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    jsonFileLogObserver,
)

from a3mail.sessions import current_session

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_filtered = FilteringLogObserver(globalLogPublisher, [_predicate])


def add_session_fields(event: dict[str, Any]) -> dict[str, Any]:
    """Add the current session's id, listener and peer to *event* (if in a session)."""
    session = current_session()
    if session is not None and "session_id" not in event:
        event["session_id"] = session.session_id
        event["session_protocol"] = session.protocol
        event["peer"] = session.peer
    return event


def _observer(event: dict[str, Any]) -> None:
    add_session_fields(event)
    if "session_id" in event and "log_system" not in event:
        event["log_system"] = (
            f"{event.get('log_namespace', '-')},{event['session_protocol']}"
            f",{event['session_id']},{event['peer']}"
        )
    _filtered(event)


def get_logger(namespace: str) -> Logger:
    """A logger for an a3mail module whose events obey ``logging.level``."""
    return Logger(namespace=namespace, observer=cast(ILogObserver, _observer))


def set_level(level: str) -> None:
    """Set the least severe level of a3mail's events that is logged."""
    _predicate.setLogLevelForNamespace("", LogLevel.levelWithName(level))


def add_json_file(path: Path, publisher: Any = globalLogPublisher) -> Callable[[], None]:
    """Also log every event as JSON lines to *path*; returns a function that stops it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by stop()
    json_observer = jsonFileLogObserver(stream, recordSeparator="")

    def observer(event: dict[str, Any]) -> None:
        json_observer(add_session_fields(event))

    publisher.addObserver(observer)

    def stop() -> None:
        publisher.removeObserver(observer)
        stream.close()

    return stop
