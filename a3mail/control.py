"""Steering a running a3mail: reload the configuration, stop gracefully, restart.

One :class:`Control` per process (``runtime.control``), used by SIGHUP, the admin API
(``POST /api/v1/server/reload`` and ``/restart``) and the manhole.

Reload re-reads the configuration file and applies what can change live: the TLS
certificate (new connections and STARTTLS take it, open sessions keep theirs), the log
level and JSON log file, the limits of the listeners whose factory has a ``reconfigure``
method (for new sessions), and the keys read at each use (:data:`LIVE_KEYS`); then it runs
the reload hooks other services registered (:meth:`Control.add_reload_hook`).  Every other
changed key is reported in ``restart_required``.

Restart drains like a graceful shutdown (``server.drain_timeout``), lets twistd finish,
then either executes the same command line again (``server.restart = "exec"``) or exits
with status :data:`RESTART_EXIT_STATUS` for a supervisor to start it again (``"exit"``).
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from a3mail.config import Config, ConfigError, load_config
from a3mail.logs import get_logger, set_level
from a3mail.tls import TLSConfigError, ensure_self_signed

log = get_logger(__name__)

#: Exit status asking a supervisor (systemd ``RestartForceExitStatus=``) for a restart.
RESTART_EXIT_STATUS = 75

#: Dotted key prefixes that a running server reads at each use, or that reload applies to
#: everything that uses them.
LIVE_KEYS = (
    "tls.",
    "logging.",
    "http.max_body",
    "http.rate_limit_per_key",
    "http.rate_limit_per_ip",
    "http.trusted_proxies",
    "webhooks.allow_private_targets",
    "server.",
    "manhole.authorized_keys",
    # The security service's reload hook re-reads the blocklist and this rule.
    "security.auto_block_",
    "security.exempt_",
)

#: Key prefix -> the listeners whose factories read those keys when they build sessions.
#: Such a key is applied live only if every running reader has it in ``live_keys``.
_READERS: dict[str, tuple[str, ...]] = {
    "limits.": ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"),
    "smtp.": ("smtp", "submission", "submissions"),
    "pop3.": ("pop3", "pop3s"),
}

ReloadHook = Callable[[Config], Awaitable[Any] | None]


class ReloadError(Exception):
    """The new configuration cannot be used; nothing was changed."""


@attrs.frozen
class ReloadReport:
    """What a reload found and did."""

    source: str | None
    changed: list[str]
    applied: list[str]
    restart_required: list[str]
    certificate: str

    def as_dict(self) -> dict[str, Any]:
        """The report as the admin API returns it."""
        return {
            "status": "reloaded",
            "source": self.source,
            "changed": self.changed,
            "applied": self.applied,
            "restart_required": self.restart_required,
            "tls": {"certificate": self.certificate, "reloaded": True},
        }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A config record as ``{"section.key": value}``."""
    if attrs.has(type(value)):
        value = {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            name = f"{prefix}{key}"
            if attrs.has(type(item)) or (isinstance(item, Mapping) and prefix == ""):
                flat.update(flatten(item, f"{name}."))
            else:
                flat[name] = dict(item) if isinstance(item, Mapping) else item
        return flat
    return {prefix.rstrip("."): value}


def changed_keys(old: Any, new: Any) -> list[str]:
    """The dotted keys whose values differ between two configurations."""
    before, after = flatten(old), flatten(new)
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def innermost_factory(factory: Any) -> Any:
    """The protocol factory under any wrappers (TLS, sessions, blocklist)."""
    for _ in range(10):
        inner = getattr(factory, "wrappedFactory", None)
        if inner is None:
            break
        factory = inner
    return factory


def restart_command(
    executable: str = sys.executable, orig_argv: list[str] | None = None
) -> list[str]:
    """The command line that started this process (interpreter options and ``-m`` kept)."""
    argv = list(sys.orig_argv if orig_argv is None else orig_argv)
    return [executable, *argv[1:]]


def restart_action(mode: str, command: list[str]) -> tuple[str, Any]:
    """What to do once the reactor has stopped: ``("exec", argv)`` or ``("exit", status)``."""
    if mode == "exit":
        return ("exit", RESTART_EXIT_STATUS)
    return ("exec", command)


def _finish_restart(action: tuple[str, Any]) -> None:  # pragma: no cover - replaces the process
    """atexit: after twistd's own clean-up, execute the command again or exit with 75."""
    sys.stdout.flush()
    sys.stderr.flush()
    kind, value = action
    if kind == "exec":
        os.execv(value[0], value)  # noqa: S606 - the command line that started us
    os._exit(value)


def register_restart(action: tuple[str, Any]) -> None:
    """Run *action* when the interpreter exits, after twistd's clean-up (pid file, logs)."""
    atexit.register(_finish_restart, action)


class Control:
    """Reload, graceful stop and restart of one a3mail process."""

    def __init__(self, runtime: Any, service: Any = None) -> None:
        self.runtime = runtime
        self.service = service
        self.hooks: list[ReloadHook] = []
        self.restart_requested = False
        self.restart_pending: tuple[str, Any] | None = None
        #: Replaced in tests: registers the final action of a restart.
        self.at_exit: Callable[[tuple[str, Any]], Any] = register_restart

    def add_reload_hook(self, hook: ReloadHook) -> None:
        """Call *hook(new_config)* on every successful reload (may return an awaitable).

        The security service registers its blocklist refresh here, for example.
        """
        self.hooks.append(hook)

    # -- reload ---------------------------------------------------------------------

    async def reload(self) -> ReloadReport:
        """Re-read the configuration file and apply it (see the module docstring).

        @raise ReloadError: the file or the certificate is unusable; nothing changed.
        """
        runtime = self.runtime
        old: Config = runtime.config
        try:
            new = load_config(old.source, data_dir=old.data_dir)
        except ConfigError as e:
            raise ReloadError(str(e)) from None
        args = (runtime.tls, new)
        try:
            await Deferred.fromFuture(asyncio.ensure_future(asyncio.to_thread(reload_tls, *args)))
        except TLSConfigError as e:
            raise ReloadError(str(e)) from None
        changed = changed_keys(old, new)
        runtime.config = new
        set_level(new.logging.level)
        if self.service is not None and old.logging.json_file != new.logging.json_file:
            self.service.open_json_log(new.logging.json_file)
        factories = self._listener_factories()
        for factory in factories.values():
            reconfigure = getattr(factory, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(new)
        applied = [k for k in changed if is_applied(k, factories)]
        if self.service is None:  # no service to reopen the JSON log
            applied = [k for k in applied if k != "logging.json_file"]
        report = ReloadReport(
            source=None if old.source is None else str(old.source),
            changed=changed,
            applied=applied,
            restart_required=[k for k in changed if k not in applied],
            certificate=str(runtime.tls.certificate),
        )
        for hook in self.hooks:
            try:
                result = hook(new)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.failure("a reload hook failed")
        log.info(
            "configuration reloaded from {source}: changed {changed}; applied {applied};"
            " restart required for {restart}",
            source=report.source or "(defaults)",
            changed=", ".join(changed) or "nothing",
            applied=", ".join(applied) or "nothing",
            restart=", ".join(report.restart_required) or "nothing",
            reload_changed=changed,
        )
        return report

    def _listener_factories(self) -> dict[str, Any]:
        """Listener name -> its protocol factory (unwrapped), for running listeners."""
        if self.service is None:
            return {}
        return {
            name: innermost_factory(factory) for name, factory in self.service.factories.items()
        }

    # -- stop and restart -----------------------------------------------------------

    def stop(self) -> None:
        """Stop the process gracefully (the service drains the sessions on the way)."""
        reactor = self.runtime.reactor
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    def restart(self, delay: float = 0.2) -> None:
        """In *delay* seconds (time to answer the request), stop gracefully, then start the
        same command line again (or exit for the supervisor: ``server.restart``)."""
        if self.restart_requested:
            return
        self.restart_requested = True
        action = restart_action(self.runtime.config.server.restart, restart_command())
        self.restart_pending = action
        log.info(
            "restart requested: draining sessions, then {how}",
            how="executing the same command line" if action[0] == "exec" else "exit status 75",
        )
        self.at_exit(action)
        self.runtime.reactor.callLater(delay, self.stop)


def is_applied(key: str, factories: Mapping[str, Any]) -> bool:
    """True if a changed *key* took effect without a restart."""
    if key.startswith(LIVE_KEYS):
        return True
    for prefix, listeners in _READERS.items():
        if key.startswith(prefix):
            readers = [f for name, f in factories.items() if name in listeners]
            return bool(readers) and all(key in getattr(f, "live_keys", ()) for f in readers)
    return False


def reload_tls(tls: Any, config: Config) -> None:
    """Point the live TLS object at the new files and load them; restore on failure."""
    old = (tls.certificate, tls.private_key)
    if config.tls.generated:
        ensure_self_signed(config.tls.certificate, config.tls.private_key, config.hostname)
    tls.certificate, tls.private_key = Path(config.tls.certificate), Path(config.tls.private_key)
    try:
        tls.reload()
    except TLSConfigError:
        tls.certificate, tls.private_key = old
        raise
