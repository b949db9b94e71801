"""The ``a3mail`` admin command, run as a real process against the test PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twisted.internet import threads
from twisted.trial import unittest

from a3mail.auth import apikeys
from a3mail.auth.passwords import verify_password
from a3mail.store import Database, Store
from tests.support import pg
from tests.support.store import require_asyncio_reactor

ROOT = Path(__file__).resolve().parent.parent


def run_cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "a3mail.cli", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


class CliTestCase(unittest.TestCase):
    def setUp(self):
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("cli")
        self.addCleanup(pg.drop_schema, self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.config = Path(self.mktemp())
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n[database]\ndsn = "{pg.dsn()}"\n'
            f'schema = "{self.schema}"\n[store]\ndefault_quota = "1G"\n'
        )

    def cli(self, *args, stdin="", ok=True):
        return threads.deferToThread(self._cli, args, stdin, ok)

    def _cli(self, args, stdin, ok):
        result = run_cli(self.config, *args, stdin=stdin)
        if ok and result.returncode != 0:
            raise AssertionError(f"a3mail {' '.join(args)} failed: {result.stderr}")
        return result

    async def open_store(self):
        store = Store(Database(pg.dsn(), min_size=1, max_size=2, schema=self.schema), self.data_dir)
        await store.open(migrate=False, listen=False)
        self.addCleanup(store.close)
        return store

    async def test_db_status_then_migrate(self):
        status = await self.cli("db", "status")
        self.assertIn("schema version 0", status.stdout)
        self.assertIn("pending: 0001_initial", status.stdout)
        migrated = await self.cli("db", "migrate")
        self.assertIn("applied 0001_initial", migrated.stdout)
        again = await self.cli("db", "status")
        self.assertIn("no pending migrations", again.stdout)

    async def test_domains_users_quota_and_keys(self):
        await self.cli("domain", "add", "Example.com", "--max-users", "5")
        listed = await self.cli("domain", "list")
        self.assertEqual(listed.stdout, "example.com\tenabled\tusers=0\n")
        await self.cli(
            "user",
            "add",
            "Admin@example.com",
            "--role",
            "admin",
            "--password-stdin",
            stdin="correct horse\n",
        )
        await self.cli("user", "quota", "admin@example.com", "2G")
        users = await self.cli("user", "list")
        self.assertIn("admin@example.com\tadmin\tenabled\tused=0\tquota=2.0G", users.stdout)
        created = await self.cli(
            "api-key",
            "create",
            "--user",
            "admin@example.com",
            "--permissions",
            "read,write,admin",
            "--name",
            "ops",
        )
        lines = dict(line.split(": ", 1) for line in created.stdout.splitlines() if ": " in line)
        key, secret = lines["API Key"], lines["Secret"]
        self.assertTrue(key.startswith("mk_live_") and secret.startswith("sk_live_"))

        store = await self.open_store()
        account = await store.accounts.get("admin@example.com")
        self.assertEqual((account.role, account.quota_bytes), ("admin", 2 << 30))
        self.assertTrue(verify_password(account.password_hash, "correct horse"))
        for token in (key, secret):
            found = await store.keys.authenticate(apikeys.token_digest(token))
            self.assertEqual(found.permissions, ("read", "write", "admin"))
            self.assertEqual(found.account_address, "admin@example.com")
        audit, _ = await store.audit.query(event_type="api_key.create")
        self.assertEqual(len(audit), 1)

        revoked = await self.cli("api-key", "revoke", lines["Key ID"])
        self.assertIn("revoked", revoked.stdout)
        self.assertIsNone(await store.keys.authenticate(apikeys.token_digest(key)))

    async def test_passwd_and_default_quota(self):
        await self.cli("domain", "add", "example.com")
        await self.cli("user", "add", "a@example.com", "--password-stdin", stdin="one\n")
        await self.cli("user", "passwd", "a@example.com", "--password-stdin", stdin="two\n")
        store = await self.open_store()
        account = await store.accounts.get("a@example.com")
        self.assertTrue(verify_password(account.password_hash, "two"))
        self.assertEqual(account.quota_bytes, 1 << 30)

    async def test_errors_are_one_line_and_exit_1(self):
        await self.cli("domain", "add", "example.com")
        cases = [
            (("domain", "add", "example.com"), "a3mail: domain example.com exists already"),
            (
                ("user", "add", "x@nowhere.example", "--no-password"),
                "a3mail: no such domain: nowhere.example",
            ),
            (
                ("user", "add", "x@example.com"),
                "a3mail: no terminal to ask for a password: use --password-stdin",
            ),
            (
                ("user", "delete", "nobody@example.com"),
                "a3mail: no such account: nobody@example.com",
            ),
            (("user", "quota", "a@example.com", "lots"), None),
            (
                ("api-key", "create", "--user", "a@example.com", "--permissions", "root"),
                "a3mail: --permissions: use some of read, write, admin",
            ),
            (("api-key", "revoke", "key_nope"), "a3mail: no such API key: key_nope"),
        ]
        for args, expected in cases:
            result = await self.cli(*args, ok=False)
            self.assertEqual(result.returncode, 1, args)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            if expected:
                self.assertEqual(result.stderr.strip(), expected)

    async def test_expiry_in_the_past_is_refused(self):
        await self.cli("domain", "add", "example.com")
        await self.cli("user", "add", "a@example.com", "--no-password")
        result = await self.cli(
            "api-key", "create", "--user", "a@example.com", "--expires", "2001-01-01", ok=False
        )
        self.assertEqual(result.stderr.strip(), "a3mail: --expires: the date is in the past")

    async def test_bad_config_file(self):
        self.config.write_text("[database]\nnonsense = 1\n")
        result = await self.cli("domain", "list", ok=False)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(), "a3mail: config: database.nonsense: unknown key")
