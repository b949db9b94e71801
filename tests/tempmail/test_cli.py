"""``a3mail domain add --tempmail`` and ``a3mail domain tempmail NAME on|off``, run as a
real process against the test PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import threads
from twisted.trial import unittest

from a3mail.store import Database, Store
from tests.support import pg
from tests.support.store import require_asyncio_reactor
from tests.test_cli import run_cli


class TempmailCliTests(unittest.TestCase):
    def setUp(self) -> None:
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("clitm")
        self.addCleanup(pg.drop_schema, self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.config = Path(self.mktemp())
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n[database]\ndsn = "{pg.dsn()}"\n'
            f'schema = "{self.schema}"\n'
        )

    def cli(self, *args: str) -> Any:
        return threads.deferToThread(run_cli, self.config, *args)

    async def test_enable_and_disable_temp_mail_for_a_domain(self):
        for args in (
            ("domain", "add", "Temp.example", "--tempmail"),
            ("domain", "add", "plain.example"),
        ):
            self.assertEqual((await self.cli(*args)).returncode, 0)
        store = Store(Database(pg.dsn(), min_size=1, max_size=2, schema=self.schema), self.data_dir)
        await store.open(migrate=False, listen=False)
        self.addCleanup(store.close)
        self.assertEqual(await store.tempmail.domains(), ["temp.example"])
        result = await self.cli("domain", "tempmail", "plain.example", "on")
        self.assertEqual(result.stdout, "temp mail on for plain.example\n")
        await self.cli("domain", "tempmail", "temp.example", "off")
        self.assertEqual(await store.tempmail.domains(), ["plain.example"])
        missing = await self.cli("domain", "tempmail", "nowhere.example", "on")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no such domain", missing.stderr)
