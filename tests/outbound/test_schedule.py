"""The retry schedule and the DSN format."""

from __future__ import annotations

import email
from email import policy

from twisted.trial import unittest

from a3mail.outbound.dsn import DSNRecipient, build_dsn
from a3mail.outbound.runner import DEFAULT_SCHEDULE, retry_delay


class ScheduleTests(unittest.TestCase):
    def test_default_schedule_grows_from_minutes_to_hours_then_repeats(self):
        delays = [retry_delay(n) for n in range(1, 10)]
        self.assertEqual(delays[0], 300)
        self.assertEqual(delays, sorted(delays))
        self.assertEqual(delays[-1], 4 * 3600)
        self.assertEqual(retry_delay(100), DEFAULT_SCHEDULE[-1])

    def test_custom_schedule(self):
        self.assertEqual([retry_delay(n, (1, 2)) for n in (1, 2, 3)], [1, 2, 2])


class DSNTests(unittest.TestCase):
    def test_delay_report_fields(self):
        data = build_dsn(
            reporting_mta="out.test",
            sender="a@example.com",
            recipients=[DSNRecipient("b@example.net", "delayed", 451, "4.3.0 busy", "mx.net")],
            headers=b"Subject: hi\r\n\r\nbody",
        )
        message = email.message_from_bytes(data, policy=policy.default)
        self.assertEqual(message["To"], "a@example.com")
        report = list(message.iter_parts())[1]
        self.assertEqual(report.get_content_type(), "message/delivery-status")
        self.assertIn(b"Action: delayed\r\nStatus: 4.3.0\r\nRemote-MTA: dns; mx.net", data)
        self.assertNotIn(b"body", data)
