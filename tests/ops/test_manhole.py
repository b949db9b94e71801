"""The SSH manhole: loopback only, public keys from authorized_keys, a real ssh client."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh.factory import SSHFactory
from twisted.internet import reactor, threads
from twisted.trial import unittest

from a3mail import tap
from a3mail.config import load_config
from a3mail.manhole import (
    ManholeConfigError,
    build_manhole,
    check_manhole,
    is_loopback,
    listening_interface,
)
from a3mail.runtime import Runtime
from a3mail.sessions import SessionTrackingFactory

SSH = shutil.which("ssh")


def write_key(path: Path) -> str:
    """A private key file for ssh; returns the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode("ascii") + " test@a3mail\n"


class CheckTests(unittest.TestCase):
    def config(self, endpoint: str, keys: str = "/x/authorized_keys") -> Any:
        return load_config(
            None,
            data_dir=self.mktemp(),
            overrides={"listeners": {"manhole": endpoint}, "manhole": {"authorized_keys": keys}},
        )

    def test_off_by_default(self):
        config = load_config(None)
        self.assertNotIn("manhole", config.listeners)
        check_manhole(config)  # nothing to check

    def test_loopback_and_unix_sockets_are_accepted(self):
        for endpoint in ("tcp:2222:interface=127.0.0.1", r"tcp6:2222:interface=\:\:1"):
            check_manhole(self.config(endpoint))
        check_manhole(self.config(f"unix:{self.mktemp()}"))

    def test_other_interfaces_are_refused(self):
        for endpoint, shown in (
            ("tcp:2222", "every interface"),
            ("tcp:2222:interface=0.0.0.0", "0.0.0.0"),
            ("tcp:2222:interface=192.0.2.1", "192.0.2.1"),
        ):
            with self.assertRaises(ManholeConfigError) as caught:
                check_manhole(self.config(endpoint))
            message = str(caught.exception)
            self.assertTrue(message.startswith("listeners.manhole: "), message)
            self.assertIn("loopback", message)
            self.assertIn(shown, message)

    def test_authorized_keys_is_required(self):
        with self.assertRaises(ManholeConfigError) as caught:
            check_manhole(self.config("tcp:2222:interface=127.0.0.1", keys=""))
        self.assertIn("manhole.authorized_keys", str(caught.exception))

    def test_interface_helpers(self):
        self.assertEqual(listening_interface("tcp:1:interface=127.0.0.2"), "127.0.0.2")
        self.assertEqual(listening_interface("tcp:1"), "")
        self.assertTrue(is_loopback("localhost"))
        self.assertTrue(is_loopback("::1"))
        self.assertFalse(is_loopback(""))

    def test_twistd_refuses_to_start_with_a_public_manhole(self):
        config = Path(self.mktemp())
        config.write_text(
            '[listeners]\nmanhole = "tcp:2222"\n[manhole]\nauthorized_keys = "/x/keys"\n'
        )
        with self.assertRaises(tap.StartError) as caught:
            tap.makeService({"config": str(config), "data-dir": self.mktemp()})
        self.assertEqual(
            str(caught.exception),
            "a3mail: listeners.manhole: the manhole must listen on a loopback address"
            " (e.g. interface=127.0.0.1), not on every interface",
        )


class SshTests(unittest.TestCase):
    """A real OpenSSH client against the manhole listener."""

    def setUp(self):
        if SSH is None:
            raise unittest.SkipTest("no ssh client (tests/support/ensure-tools.sh)")
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir()
        self.good, self.bad = self.dir / "good", self.dir / "bad"
        authorized = self.dir / "authorized_keys"
        authorized.write_text("# a comment\n" + write_key(self.good))
        write_key(self.bad)
        config = load_config(
            None,
            data_dir=self.dir / "data",
            overrides={
                "listeners": {"manhole": "tcp:0:interface=127.0.0.1"},
                "manhole": {"authorized_keys": str(authorized)},
            },
        )
        self.runtime = Runtime(
            config=config,
            store=object(),  # type: ignore[arg-type]
            tls=object(),  # type: ignore[arg-type]
            reactor=reactor,
        )
        self.factory = build_manhole(self.runtime)
        tracked = SessionTrackingFactory(self.factory, "manhole", self.runtime.sessions)
        self.port = reactor.listenTCP(0, tracked, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(self.port.stopListening)

    def ssh(self, key: Path, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        command = [
            str(SSH),
            "-tt",
            "-F",
            "/dev/null",
            "-i",
            str(key),
            "-p",
            str(self.port.getHost().port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PreferredAuthentications=publickey,password,keyboard-interactive",
            "-o",
            "LogLevel=ERROR",
            "operator@127.0.0.1",
        ]
        return subprocess.run(command, input=stdin, capture_output=True, timeout=30, check=False)

    async def test_listed_key_logs_in_and_evaluates(self):
        line = b'"ns-" + type(runtime).__name__ + "-" + str(len(sessions))\r'
        result = await threads.deferToThread(self.ssh, self.good, line + b"\x04")
        output = result.stdout.decode("utf-8", "replace")
        self.assertIn("'ns-Runtime-1'", output, result)  # its own session is listed

    async def test_unlisted_key_is_refused(self):
        result = await threads.deferToThread(self.ssh, self.bad, b"1\r\x04")
        self.assertEqual(result.returncode, 255, result)
        self.assertIn(b"Permission denied (publickey)", result.stderr)

    def test_no_password_authentication_offered(self):
        self.assertEqual(
            self.factory.portal.listCredentialsInterfaces()[0].__name__, "ISSHPrivateKey"
        )
        self.assertEqual(len(self.factory.portal.listCredentialsInterfaces()), 1)

    def test_host_key_kept_in_data_dir(self):
        path = self.dir / "data" / "manhole" / "host_key"
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        again = build_manhole(self.runtime)
        self.assertEqual(again.publicKeys, self.factory.publicKeys)
        self.assertIsInstance(again, SSHFactory)
