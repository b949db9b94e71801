"""a3mail.control in memory: reload (what is applied, what needs a restart), restart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.logger import LogLevel
from twisted.trial import unittest

from a3mail import logs
from a3mail.config import load_config
from a3mail.control import (
    RESTART_EXIT_STATUS,
    Control,
    ReloadError,
    innermost_factory,
    is_applied,
    restart_action,
    restart_command,
)
from a3mail.pop3.factory import POP3Factory, Pop3Settings
from a3mail.runtime import Runtime
from a3mail.sessions import SessionTrackingFactory
from a3mail.smtp.factory import build_factory
from a3mail.tls import ServerTLS, ensure_self_signed


class FakeReactor(task.Clock):
    """A clock that can be stopped."""

    running = True

    def __init__(self) -> None:
        super().__init__()
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


class LiveFactory:
    """A listener factory that applies some keys on reload."""

    def __init__(self, *live: str) -> None:
        self.live_keys = frozenset(live)
        self.configs: list[Any] = []

    def reconfigure(self, config: Any) -> None:
        self.configs.append(config)


class FakeService:
    def __init__(self, factories: dict[str, Any]) -> None:
        self.factories = factories
        self.json_logs: list[Any] = []

    def open_json_log(self, path: Any) -> None:
        self.json_logs.append(path)


class ReloadTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir()
        for name in ("one", "two"):
            ensure_self_signed(self.dir / f"{name}.pem", self.dir / f"{name}.key", "localhost")
        self.file = self.dir / "a3mail.toml"
        self.write()
        self.config = load_config(self.file)
        self.tls = ServerTLS(self.config.tls.certificate, self.config.tls.private_key)
        self.tls.load()
        self.reactor = FakeReactor()
        self.runtime = Runtime(
            config=self.config,
            store=object(),  # type: ignore[arg-type]
            tls=self.tls,
            reactor=self.reactor,
        )
        self.addCleanup(logs.set_level, "info")

    def write(self, cert: str = "one", extra: str = "") -> None:
        self.file.write_text(
            f'data_dir = "{self.dir / "data"}"\n'
            f'[tls]\ncertificate = "{self.dir / cert}.pem"\n'
            f'private_key = "{self.dir / cert}.key"\n' + extra
        )

    async def test_reload_swaps_certificate_and_level_and_reports(self):
        old_context = self.tls.getContext()
        self.write("two", '[logging]\nlevel = "debug"\n[database]\npool_max = 20\n')
        control = Control(self.runtime)
        report = await control.reload()
        self.assertEqual(
            report.changed,
            ["database.pool_max", "logging.level", "tls.certificate", "tls.private_key"],
        )
        self.assertEqual(report.applied, ["logging.level", "tls.certificate", "tls.private_key"])
        self.assertEqual(report.restart_required, ["database.pool_max"])
        self.assertEqual(self.tls.certificate, self.dir / "two.pem")
        self.assertIsNot(self.tls.getContext(), old_context)
        self.assertEqual(self.runtime.config.database.pool_max, 20)
        self.assertEqual(logs._predicate.logLevelForNamespace("a3mail.x"), LogLevel.debug)

    async def test_one_log_line_per_reload_naming_the_changes(self):
        events: list[dict[str, Any]] = []
        logs.globalLogPublisher.addObserver(events.append)
        self.addCleanup(logs.globalLogPublisher.removeObserver, events.append)
        self.write(extra='[smtp]\ncommand_timeout = "1m"\n')
        await Control(self.runtime).reload()
        [event] = [e for e in events if "reload_changed" in e]
        self.assertEqual(event["reload_changed"], ["smtp.command_timeout"])
        self.assertIn("smtp.command_timeout", event["changed"])
        self.assertIn("smtp.command_timeout", event["restart"])  # no SMTP listener applies it

    async def test_a_bad_file_changes_nothing(self):
        self.file.write_text("[limits]\nmax_recipients = 0\n")
        with self.assertRaises(ReloadError) as caught:
            await Control(self.runtime).reload()
        self.assertIn("limits.max_recipients", str(caught.exception))
        self.assertIs(self.runtime.config, self.config)

    async def test_a_bad_certificate_keeps_the_old_one(self):
        (self.dir / "two.pem").write_text("not a certificate")
        self.write("two")
        context = self.tls.getContext()
        with self.assertRaises(ReloadError):
            await Control(self.runtime).reload()
        self.assertEqual(self.tls.certificate, self.dir / "one.pem")
        self.assertIs(self.tls.getContext(), context)
        self.assertIs(self.runtime.config, self.config)

    async def test_listener_limits_applied_only_when_every_reader_applies_them(self):
        smtp = LiveFactory("limits.max_message_size", "smtp.command_timeout")
        pop3 = LiveFactory("limits.max_line_length")
        service = FakeService(
            {"smtp": SessionTrackingFactory(smtp, "smtp", self.runtime.sessions), "pop3": pop3}
        )
        self.write(
            extra='[limits]\nmax_message_size = "10M"\nmax_line_length = 2048\n'
            '[smtp]\ncommand_timeout = "1m"\n'
        )
        report = await Control(self.runtime, service).reload()
        # max_message_size: pop3 also reads [limits] but does not apply it.
        self.assertEqual(report.applied, ["smtp.command_timeout"])
        self.assertEqual(
            report.restart_required, ["limits.max_line_length", "limits.max_message_size"]
        )
        self.assertEqual([c.limits.max_message_size for c in smtp.configs], [10 * 1024 * 1024])
        self.assertEqual(len(pop3.configs), 1)

    def test_is_applied(self):
        both = {
            "smtp": LiveFactory("limits.max_recipients"),
            "pop3": LiveFactory("limits.max_recipients"),
        }
        self.assertTrue(is_applied("limits.max_recipients", both))
        self.assertFalse(is_applied("limits.max_recipients", {**both, "imaps": object()}))
        self.assertFalse(is_applied("limits.max_recipients", {}))  # nobody reads it now
        self.assertTrue(is_applied("logging.level", {}))
        self.assertTrue(is_applied("http.max_body", {}))
        self.assertFalse(is_applied("http.request_timeout", {}))
        self.assertFalse(is_applied("listeners.smtp", both))
        self.assertTrue(is_applied("limits.max_recipients", {"smtp": both["smtp"], "http": 1}))

    async def test_json_log_file_reopened_when_it_changes(self):
        service = FakeService({})
        self.write(extra=f'[logging]\njson_file = "{self.dir / "log.json"}"\n')
        report = await Control(self.runtime, service).reload()
        self.assertEqual(service.json_logs, [self.dir / "log.json"])
        self.assertIn("logging.json_file", report.applied)

    async def test_json_log_file_needs_the_service(self):
        self.write(extra=f'[logging]\njson_file = "{self.dir / "log.json"}"\n')
        report = await Control(self.runtime).reload()
        self.assertEqual(report.restart_required, ["logging.json_file"])

    async def test_reload_hooks_get_the_new_config(self):
        control = Control(self.runtime)
        seen: list[Any] = []

        async def refresh(config: Any) -> None:
            seen.append(("async", config))

        control.add_reload_hook(lambda config: seen.append(("sync", config)))
        control.add_reload_hook(refresh)
        control.add_reload_hook(lambda config: 1 / 0)  # logged, the reload still succeeds
        self.write(extra="[pop3]\nmax_errors = 3\n")
        await control.reload()
        self.assertEqual(seen, [("sync", self.runtime.config), ("async", self.runtime.config)])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_smtp_factory_reconfigure_changes_limits_for_new_sessions(self):
        factory = build_factory(self.runtime, "mx", verifier=None)
        new = load_config(
            None,
            overrides={"limits": {"max_message_size": 1000}, "smtp": {"max_connections_per_ip": 2}},
        )
        factory.reconfigure(new)
        self.assertEqual(factory.context.limits.max_message_size, 1000)
        self.assertEqual(factory.context.tracker.limit, 2)
        self.assertLessEqual(
            {"limits.max_message_size", "smtp.max_connections_per_ip"}, factory.live_keys
        )

    def test_pop3_factory_reconfigure_changes_settings(self):
        factory = POP3Factory(
            store=object(),  # type: ignore[arg-type]
            checker=object(),  # type: ignore[arg-type]
            guard=object(),  # type: ignore[arg-type]
            settings=Pop3Settings(hostname="pop.example"),
            tls=None,
            clock=self.reactor,
        )
        new = load_config(None, overrides={"pop3": {"idle_timeout": "20m", "max_errors": 3}})
        factory.reconfigure(new)
        self.assertEqual(factory.settings.idle_timeout, 1200)
        self.assertEqual(factory.settings.max_errors, 3)
        self.assertEqual(factory.settings.hostname, "pop.example")  # not a live key

    def test_innermost_factory(self):
        inner = LiveFactory()
        self.assertIs(innermost_factory(SessionTrackingFactory(inner, "x", None)), inner)  # type: ignore[arg-type]


class RestartTests(unittest.TestCase):
    def setUp(self):
        self.reactor = FakeReactor()
        self.runtime = Runtime(
            config=load_config(None, overrides={"server": {"restart": "exec"}}),
            store=object(),  # type: ignore[arg-type]
            tls=object(),  # type: ignore[arg-type]
            reactor=self.reactor,
        )
        self.control = Control(self.runtime)
        self.finals: list[Any] = []
        self.control.at_exit = self.finals.append

    def test_restart_command_keeps_interpreter_options(self):
        argv = ["python3", "-X", "dev", "-m", "twisted", "-n", "a3mail", "--config", "a.toml"]
        self.assertEqual(
            restart_command("/usr/bin/python3", argv),
            [
                "/usr/bin/python3",
                "-X",
                "dev",
                "-m",
                "twisted",
                "-n",
                "a3mail",
                "--config",
                "a.toml",
            ],
        )
        self.assertEqual(restart_command()[0], sys.executable)

    def test_restart_action(self):
        self.assertEqual(restart_action("exec", ["x", "y"]), ("exec", ["x", "y"]))
        self.assertEqual(restart_action("exit", ["x"]), ("exit", RESTART_EXIT_STATUS))
        self.assertEqual(RESTART_EXIT_STATUS, 75)

    def test_restart_stops_the_reactor_after_answering_and_execs_at_exit(self):
        self.control.restart()
        self.assertEqual(self.finals, [("exec", restart_command())])
        self.assertEqual(self.reactor.stopped, 0)  # the 202 goes out first
        self.reactor.advance(0.2)
        self.assertEqual(self.reactor.stopped, 1)
        self.control.restart()  # a second request changes nothing
        self.reactor.advance(1)
        self.assertEqual(self.reactor.stopped, 1)
        self.assertEqual(len(self.finals), 1)

    def test_restart_in_exit_mode(self):
        self.runtime.config = load_config(None, overrides={"server": {"restart": "exit"}})
        self.control.restart(delay=0)
        self.reactor.advance(0)
        self.assertEqual(self.finals, [("exit", 75)])
        self.assertEqual(self.reactor.stopped, 1)
