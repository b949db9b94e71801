"""The reaper: expired temp addresses go with their mail; nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher

from a3mail.tempmail.reaper import TempmailReaper
from tests.http.support import START
from tests.tempmail.support import DOMAIN, TempmailTestCase

NOW = datetime.fromtimestamp(START, UTC)
MESSAGE = b"From: a@service.example\r\nTo: x@temp.example\r\nSubject: hi\r\n\r\ncode 1234\r\n"


class ReaperTests(TempmailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.hour = await self.generate(name="hour", expiryTime=3600000)
        self.week = await self.generate(name="week", expiryTime=604800000)
        self.forever = await self.generate(name="forever", expiryTime=0)
        await self.deliver(self.hour["email"], MESSAGE)
        await self.deliver(self.hour["email"], MESSAGE)
        # An ordinary account in a temp domain with an expiry in the past: not temp mail.
        self.ordinary = await self.store.accounts.add(
            f"ordinary@{DOMAIN}", expires_at=NOW - timedelta(days=1)
        )
        self.reaper = TempmailReaper(self.store, self.clock, interval=60)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def mail_files(self) -> int:
        return sum(1 for p in (self.data_dir / "mail").rglob("*") if p.is_file())

    async def addresses(self) -> set[str]:
        rows = await self.sql("SELECT address FROM accounts")
        return {r["address"] for r in rows}

    async def test_nothing_expired_nothing_removed(self):
        report = await self.reaper.reap()
        self.assertEqual(report.addresses, 0)
        self.assertEqual(len(await self.addresses()), 4)

    async def test_expired_addresses_go_with_their_mail(self):
        files = self.mail_files()
        self.clock.advance(3601)
        report = await self.reaper.reap()
        self.assertEqual((report.addresses, report.messages), (1, 2))
        self.assertEqual(
            await self.addresses(),
            {self.week["email"], self.forever["email"], self.ordinary.address},
        )
        self.assertEqual(self.mail_files(), files - 2)
        logged = [e for e in self.events if "reaper removed" in e.get("log_format", "")]
        self.assertEqual(len(logged), 1)
        self.assertEqual((logged[0]["addresses"], logged[0]["messages"]), (1, 2))
        reply = await self.call("GET", f"/api/emails/{self.hour['emailId']}")
        self.assertApiError(reply, 404)

    async def test_permanent_and_ordinary_accounts_survive_years(self):
        self.clock.advance(10 * 365 * 86400)
        report = await self.reaper.reap()
        self.assertEqual(report.addresses, 2)
        self.assertEqual(await self.addresses(), {self.forever["email"], self.ordinary.address})

    async def test_the_service_runs_passes_on_its_clock(self):
        self.reaper.startService()
        self.addCleanup(self.reaper.stopService)
        await self._idle()
        self.assertEqual(len(await self.addresses()), 4)
        self.clock.advance(3600)  # expiry reached, and one tick at exactly 3600 s
        await self._idle()
        self.assertNotIn(self.hour["email"], await self.addresses())
        self.assertIn(self.week["email"], await self.addresses())

    async def _idle(self) -> None:
        for _ in range(2000):
            if self.reaper._running is None:
                return
            await task.deferLater(reactor, 0.001, lambda: None)  # type: ignore[arg-type]
        self.fail("the reaper pass did not finish")
