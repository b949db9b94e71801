"""Bad input on every freemail route is a 4xx with ``{"error"}``, never a 500: JSON of
the wrong shape, wrong types, odd ids, as the strict admin (who passes every permission
check and so reaches the deepest parsing)."""

from __future__ import annotations

import json
from itertools import product

from a3mail.http.freemail.resource import ROUTES
from tests.tempmail.freemail_support import FreemailTestCase

BODIES: tuple[bytes, ...] = (
    b"[1, 2]",
    b'"text"',
    b"{not json",
    json.dumps(
        {
            "address": 5,
            "addresses": "a@b.example",
            "mailbox_id": "x",
            "mailbox_ids": [True],
            "forward_to": ["x"],
            "is_favorite": "yes",
            "can_login": None,
            "new_password": 7,
            "local": {"a": 1},
            "domainIndex": -1,
            "username": ["u"],
            "password": 1,
            "from": "a@b..c",
            "to": [None],
            "scheduledAt": "9999-99-99",
            "status": 3,
            "mailboxLimit": "10",
            "currentPassword": None,
        }
    ).encode(),
)


QUERIES = ("", "?address=a@b..c&mailbox=%ff&limit=-1&ids=1,,x&length=999&from=&to=x")


class RobustnessTests(FreemailTestCase):
    async def test_no_route_answers_500_to_bad_input(self):
        await self.create("present")
        statuses: set[int] = set()
        for method, path, _target, _access in ROUTES:
            values = ("1", "abc", "99999999999999999999") if "<" in path else ("",)
            for value in values:
                concrete = path
                for name in ("message_id", "sent_id", "user_id"):
                    concrete = concrete.replace(f"<{name}>", value)
                for query, body in product(QUERIES, BODIES):
                    reply = await self.call(method, concrete + query, who="root", data=body)
                    self.assertLess(reply.status, 500, (method, concrete, body, reply.body))
                    statuses.add(reply.status)
                    if reply.header("content-type") == "application/json":
                        self.assertNotIn(b"Traceback", reply.body)
        self.assertTrue({400, 404} <= statuses, statuses)
