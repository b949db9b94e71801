"""The pop3/pop3s listeners: registration, configuration, the factory built from a Runtime;
the maildrop adapter against Twisted's interface; the command-line reader."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.mail.interfaces import IMailboxPOP3
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from a3mail import config as config_module
from a3mail.config import ConfigError, load_config
from a3mail.listeners import IMPLICIT_TLS, PROTOCOL_FACTORIES
from a3mail.pop3.commands import LINE_TOO_LONG, CommandQueue, message_number
from a3mail.pop3.factory import POP3Factory, Pop3Settings
from a3mail.pop3.mailbox import Maildrop
from a3mail.runtime import Runtime
from tests.pop3.support import MESSAGE, Pop3TestCase


class ConfigurationTests(TestCase):
    def test_listeners_are_registered_with_loopback_defaults(self):
        self.assertEqual(config_module.LISTENER_DEFAULTS["pop3"], "tcp:1110:interface=127.0.0.1")
        self.assertEqual(config_module.LISTENER_DEFAULTS["pop3s"], "tcp:9950:interface=127.0.0.1")
        self.assertIn("pop3", PROTOCOL_FACTORIES)
        self.assertIn("pop3s", PROTOCOL_FACTORIES)
        self.assertIn("pop3s", IMPLICIT_TLS)
        self.assertNotIn("pop3", IMPLICIT_TLS)

    def test_pop3_section(self):
        c = load_config(None)
        self.assertEqual((c.pop3.idle_timeout, c.pop3.max_errors), (600.0, 10))
        c = load_config(None, overrides={"pop3": {"idle_timeout": "1h", "max_errors": 3}})
        self.assertEqual((c.pop3.idle_timeout, c.pop3.max_errors), (3600.0, 3))

    def test_idle_timeout_has_the_rfc_1939_minimum(self):
        error = self.assertRaises(
            ConfigError, load_config, None, overrides={"pop3.idle_timeout": "5m"}
        )
        self.assertEqual(str(error), "config: pop3.idle_timeout: must be at least 600, got 300.0")

    def test_settings_from_config(self):
        c = load_config(
            None,
            overrides={
                "hostname": "mail.example.org",
                "limits.max_line_length": 1000,
                "auth.allow_plaintext_loopback": True,
                "pop3.max_errors": 4,
            },
        )
        self.assertEqual(
            Pop3Settings.from_config(c),
            Pop3Settings("mail.example.org", 1000, 600.0, 4, True),
        )


class FactoryTests(Pop3TestCase):
    async def test_built_from_the_runtime(self):
        config = load_config(None, data_dir=self.data_dir, overrides={"auth.failure_delay": "3s"})
        tls = object()
        runtime = Runtime(config=config, store=self.store, tls=tls, reactor=reactor)  # type: ignore[arg-type]
        factory = PROTOCOL_FACTORIES["pop3"](runtime)
        self.assertIsInstance(factory, POP3Factory)
        assert isinstance(factory, POP3Factory)
        self.assertIs(factory.store, self.store)
        self.assertIs(factory.tls, tls)
        self.assertIs(factory.clock, reactor)
        self.assertEqual(factory.guard.failure_delay, 3.0)
        self.assertEqual(factory.settings, Pop3Settings.from_config(config))
        session = factory.buildProtocol(None)
        self.assertIs(session.factory, factory)

    async def test_maildrop_provides_twisted_interface(self):
        await self.deliver()
        maildrop = await Maildrop.load(self.store, self.alice.id)
        self.assertTrue(verifyObject(IMailboxPOP3, maildrop))
        self.assertEqual(maildrop.listMessages(), [len(MESSAGE)])
        self.assertEqual(maildrop.getUidl(0), b"%d.1" % self.inbox.uidvalidity)
        with maildrop.getMessage(0) as f:
            self.assertEqual(f.read(), MESSAGE)
        maildrop.deleteMessage(0)
        self.assertEqual(maildrop.listMessages(0), 0)
        self.assertRaises(ValueError, maildrop.getMessage, 0)
        self.assertRaises(ValueError, maildrop.listMessages, 1)
        maildrop.undeleteMessages()
        self.assertEqual(maildrop.listMessages(0), len(MESSAGE))

    def test_clock_is_the_factory_clock(self):
        clock = Clock()
        factory = POP3Factory(self.store, self.factory.checker, self.factory.guard,  # type: ignore[arg-type]
                              Pop3Settings(), None, clock)  # fmt: skip
        _, transport = self.connect(factory=factory)
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # the idle timer, on our clock
        transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])


class CommandQueueTests(TestCase):
    def lines(self, *chunks: bytes, limit: int = 10) -> list[object]:
        queue = CommandQueue(limit)
        for chunk in chunks:
            queue.feed(chunk)
        out = []
        while (line := queue.pop()) is not None:
            out.append(line)
        return out

    def test_crlf_and_bare_lf(self):
        self.assertEqual(self.lines(b"A\r\nB\nC\r", b"\nD"), [b"A", b"B", b"C"])

    def test_split_anywhere(self):
        data = b"STAT\r\nLIST 1\r\n"
        for i in range(len(data)):
            self.assertEqual(self.lines(data[:i], data[i:]), [b"STAT", b"LIST 1"])

    def test_overlong_lines(self):
        self.assertEqual(self.lines(b"x" * 10 + b"\r\nok\r\n"), [b"x" * 10, b"ok"])
        self.assertEqual(self.lines(b"x" * 11 + b"\r\nok\r\n"), [LINE_TOO_LONG, b"ok"])
        self.assertEqual(self.lines(b"x" * 30, b"y" * 30, b"\r\nok\n"), [LINE_TOO_LONG, b"ok"])

    def test_discard(self):
        queue = CommandQueue(100)
        queue.feed(b"STLS\r\nUSER x\r\nPA")
        self.assertEqual(queue.pop(), b"STLS")
        queue.discard()
        queue.feed(b"SS y\r\n")
        self.assertEqual((queue.pop(), queue.pop()), (b"SS y", None))

    def test_message_numbers(self):
        self.assertEqual(message_number(b"17"), 17)
        for bad in (b"", b"-1", b"+1", b"1.0", b"abc", b"\xd9\xa1", b"1" * 11):
            self.assertIsNone(message_number(bad), bad)
