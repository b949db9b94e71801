"""store.search: every SEARCH key evaluated in SQL over a small real mailbox; fetch_info."""

from __future__ import annotations

from datetime import UTC, datetime

from a3mail.imap.searchspec import SearchQuery, parse_search
from a3mail.mime import parse_message
from a3mail.store.search import FetchRecord
from a3mail.store.searchkeys import And, SequenceKey
from tests.imap.tokens_helper import toks
from tests.support.store import StoreTestCase


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


REPORT = crlf(
    "From: Alice Example <alice@a.example>\n"
    "To: bob@b.example\n"
    "Cc: Carol <carol@c.example>\n"
    "Bcc: dave@d.example\n"
    "Subject: Quarterly report\n"
    "Date: Mon, 15 Jan 2024 23:30:00 -0500\n"
    "X-Priority: 1 (Highest)\n"
    "\n"
    "The numbers are fine.\n"
)
GREETING = crlf(
    "From: Bob <bob@b.example>\n"
    "To: Alice <alice@a.example>\n"
    "Subject: =?UTF-8?B?0J/RgNC40LLQtdGCINC80LjRgA==?=\n"
    "Date: Sun, 10 Mar 2024 12:00:00 +0000\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Лето близко.\n"
)
LUNCH = crlf(
    "From: cafe@c.example\n"
    "To: alice@a.example\n"
    "Subject: Lunch\n"
    "Date: Mon, 1 Apr 2024 09:00:00 +0200\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Pizza at noon</p>\n" + "<!-- padding -->\n" * 200
)
LEGACY = crlf(
    "From: old@o.example\n"
    "To: alice@a.example\n"
    "Cc: erin@e.example\n"
    "Subject: legacy row\n"
    "X-Old: yes\n"
    "\n"
    "stored before headers were kept\n"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def query(text: str, uids: list[int] | None = None) -> SearchQuery:
    q = parse_search(toks(text))
    return q.resolve(uids or [])


class SearchTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.account = await self.make_account("alice@a.example")
        self.uids = []
        for raw, flags, date, drop_headers in (
            (REPORT, ["\\Seen", "\\Flagged", "$Work"], "2024-02-01T10:00:00", False),
            (GREETING, ["\\Answered", "\\Draft"], "2024-03-10T23:59:00", False),
            (LUNCH, ["\\Deleted", "\\Seen"], "2024-04-01T00:00:00", False),
            (LEGACY, [], "2024-05-01T00:00:00", True),
        ):
            parsed = parse_message(raw).to_json()
            if drop_headers:  # a row parsed before the parser kept the header fields
                parsed.pop("headers")
                parsed["v"] = 1
            blob = await self.store.incoming(raw)
            box, uid = await self.store.messages.append(
                self.account.id, "INBOX", blob, parsed=parsed, flags=flags, internal_date=at(date)
            )
            self.uids.append(uid)
        self.box = box

    async def search(self, text: str) -> list[int]:
        result = await self.store.search.search(
            self.account.id, self.box.id, query(text, self.uids)
        )
        return [self.uids.index(uid) + 1 for uid in result.uids]

    async def test_all_and_flags(self) -> None:
        self.assertEqual(await self.search("ALL"), [1, 2, 3, 4])
        self.assertEqual(await self.search("SEEN"), [1, 3])
        self.assertEqual(await self.search("UNSEEN"), [2, 4])
        self.assertEqual(await self.search("ANSWERED"), [2])
        self.assertEqual(await self.search("UNANSWERED"), [1, 3, 4])
        self.assertEqual(await self.search("FLAGGED"), [1])
        self.assertEqual(await self.search("UNFLAGGED"), [2, 3, 4])
        self.assertEqual(await self.search("DELETED"), [3])
        self.assertEqual(await self.search("UNDELETED"), [1, 2, 4])
        self.assertEqual(await self.search("DRAFT"), [2])
        self.assertEqual(await self.search("UNDRAFT"), [1, 3, 4])

    async def test_recent_new_old(self) -> None:
        """No \\Recent state: RECENT and NEW match nothing, OLD everything."""
        self.assertEqual(await self.search("RECENT"), [])
        self.assertEqual(await self.search("NEW"), [])
        self.assertEqual(await self.search("OLD"), [1, 2, 3, 4])

    async def test_keywords(self) -> None:
        self.assertEqual(await self.search("KEYWORD $work"), [1])
        self.assertEqual(await self.search("UNKEYWORD $Work"), [2, 3, 4])
        self.assertEqual(await self.search("KEYWORD \\Seen"), [1, 3])

    async def test_internal_dates(self) -> None:
        self.assertEqual(await self.search("BEFORE 10-Mar-2024"), [1])
        self.assertEqual(await self.search("ON 10-Mar-2024"), [2])
        self.assertEqual(await self.search("SINCE 10-Mar-2024"), [2, 3, 4])
        self.assertEqual(await self.search('SINCE "1-Apr-2024"'), [3, 4])

    async def test_within_younger_and_older_than_now(self) -> None:
        """WITHIN (RFC 5032): the internal dates are 2024, so every message is older than a
        day and none younger; an interval reaching back before 2024 takes them all."""
        self.assertEqual(await self.search("OLDER 86400"), [1, 2, 3, 4])
        self.assertEqual(await self.search("YOUNGER 86400"), [])
        since_feb = int((datetime.now(UTC) - at("2024-03-01T00:00:00")).total_seconds())
        self.assertEqual(await self.search(f"YOUNGER {since_feb}"), [2, 3, 4])
        self.assertEqual(await self.search(f"OLDER {since_feb}"), [1])
        self.assertEqual(await self.search("YOUNGER 99999999999999999999"), [1, 2, 3, 4])

    async def test_sent_dates_use_the_header_own_date(self) -> None:
        """Mon, 15 Jan 2024 23:30 -0500 was sent on the 15th (the 16th in UTC)."""
        self.assertEqual(await self.search("SENTON 15-Jan-2024"), [1])
        self.assertEqual(await self.search("SENTBEFORE 16-Jan-2024"), [1])
        self.assertEqual(await self.search("SENTSINCE 10-Mar-2024"), [2, 3])
        # No Date header: SENT* never match, NOT SENT* does.
        self.assertEqual(await self.search("NOT SENTSINCE 1-Jan-2000"), [4])

    async def test_sizes(self) -> None:
        self.assertEqual(await self.search(f"LARGER {len(LUNCH) - 1}"), [3])
        self.assertEqual(await self.search(f"SMALLER {len(LEGACY) + 1}"), [4])
        self.assertEqual(await self.search(f"SMALLER {len(LEGACY)}"), [])

    async def test_address_and_subject_keys(self) -> None:
        self.assertEqual(await self.search("FROM alice"), [1])
        self.assertEqual(await self.search('FROM "ALICE EXAMPLE"'), [1])
        self.assertEqual(await self.search("TO alice@a.example"), [2, 3, 4])
        self.assertEqual(await self.search("CC carol"), [1])
        self.assertEqual(await self.search("CC erin"), [4])  # old row: the cached Cc list
        self.assertEqual(await self.search("BCC dave@d"), [1])
        self.assertEqual(await self.search("SUBJECT REPORT"), [1])

    async def test_header(self) -> None:
        self.assertEqual(await self.search("HEADER X-Priority highest"), [1])
        self.assertEqual(await self.search('HEADER x-priority ""'), [1])
        self.assertEqual(await self.search("HEADER Subject lunch"), [3])
        self.assertEqual(await self.search("HEADER Subject legacy"), [4])  # old row: column
        self.assertEqual(await self.search("HEADER X-Old yes"), [])  # not kept before v2

    async def test_body_and_text(self) -> None:
        self.assertEqual(await self.search("BODY numbers"), [1])
        self.assertEqual(await self.search("BODY pizza"), [3])  # HTML-only: its text
        self.assertEqual(await self.search("BODY quarterly"), [])
        self.assertEqual(await self.search("TEXT quarterly"), [1])
        self.assertEqual(await self.search("TEXT x-priority"), [1])
        self.assertEqual(await self.search("TEXT pizza"), [3])
        self.assertEqual(await self.search("TEXT LEGACY"), [4])

    async def test_utf8_charset(self) -> None:
        self.assertEqual(await self.search("CHARSET UTF-8 SUBJECT Привет"), [2])
        self.assertEqual(await self.search('CHARSET UTF-8 BODY "Лето"'), [2])
        # Case-insensitive beyond ASCII too (lower() of the database's UTF-8 ctype).
        self.assertEqual(await self.search("CHARSET UTF-8 SUBJECT пРИВЕТ"), [2])

    async def test_wildcards_are_literal(self) -> None:
        self.assertEqual(await self.search('SUBJECT "%"'), [])
        self.assertEqual(await self.search('SUBJECT "_"'), [])

    async def test_sequence_sets_and_uids(self) -> None:
        self.assertEqual(await self.search("2:3"), [2, 3])
        self.assertEqual(await self.search("*"), [4])
        self.assertEqual(await self.search("1,3:*"), [1, 3, 4])
        self.assertEqual(await self.search("9"), [])
        uid2 = self.uids[1]
        self.assertEqual(await self.search(f"UID {uid2}"), [2])
        self.assertEqual(await self.search(f"UID {uid2}:*"), [2, 3, 4])
        self.assertEqual(await self.search("UID 1000:*"), [4])

    async def test_not_or_and_groups(self) -> None:
        self.assertEqual(await self.search("NOT SEEN"), [2, 4])
        self.assertEqual(await self.search("OR FLAGGED DRAFT"), [1, 2])
        self.assertEqual(await self.search("SEEN NOT DELETED"), [1])
        self.assertEqual(await self.search("(SEEN UNDELETED) OR ANSWERED SUBJECT lunch"), [])
        self.assertEqual(await self.search("OR (SEEN UNDELETED) (ANSWERED DRAFT)"), [1, 2])

    async def test_modseq(self) -> None:
        changed, _ = await self.store.messages.store_flags(
            self.account.id, self.box.id, [self.uids[2]], "+", ["$Done"]
        )
        q = query(f"MODSEQ {changed[0].modseq}", self.uids)
        result = await self.store.search.search(self.account.id, self.box.id, q)
        self.assertEqual(result.uids, (self.uids[2],))
        self.assertEqual(result.highest_modseq, changed[0].modseq)
        self.assertTrue(q.uses_modseq)

    async def test_empty_result(self) -> None:
        result = await self.store.search.search(
            self.account.id, self.box.id, query("SUBJECT nothing-like-this", self.uids)
        )
        self.assertEqual((result.uids, result.highest_modseq), ((), None))

    async def test_other_account_sees_nothing(self) -> None:
        bob = await self.make_account("bob@a.example")
        result = await self.store.search.search(bob.id, self.box.id, query("ALL"))
        self.assertEqual(result.uids, ())

    async def test_unresolved_sequence_set_is_refused(self) -> None:
        q = SearchQuery(And((SequenceKey(((1, 2),)),)))
        with self.assertRaises(ValueError):
            await self.store.search.search(self.account.id, self.box.id, q)

    async def test_fetch_info(self) -> None:
        records = await self.store.search.fetch_info(
            self.account.id, self.box.id, [self.uids[2], self.uids[0], 99999], True
        )
        self.assertEqual([r.uid for r in records], [self.uids[0], self.uids[2]])
        self.assertIsInstance(records[0], FetchRecord)
        self.assertEqual(records[0].flag_names, ("\\Seen", "\\Flagged", "$Work"))
        self.assertEqual(records[0].parsed["envelope"]["subject"], "Quarterly report")
        plain = await self.store.search.fetch_info(self.account.id, self.box.id, self.uids)
        self.assertEqual([r.parsed for r in plain], [None] * 4)

    async def test_fetch_info_chunks(self) -> None:
        """More UIDs than one chunk are read in several statements, still in order."""
        from a3mail.store import search

        self.patch(search, "FETCH_CHUNK", 3)
        records = await self.store.search.fetch_info(self.account.id, self.box.id, self.uids)
        self.assertEqual([r.uid for r in records], self.uids)

    async def test_sort_keys(self) -> None:
        """What SORT compares, in UID order, for the UIDs that exist (gaps and unknown UIDs
        included): decoded subject, first address local parts, dates, size."""
        records = await self.store.search.sort_keys(
            self.account.id, self.box.id, [self.uids[3], self.uids[1], self.uids[0], 99999]
        )
        self.assertEqual([r.uid for r in records], [self.uids[0], self.uids[1], self.uids[3]])
        report, greeting, legacy = records
        self.assertEqual(
            (report.subject, report.from_mailbox, report.to_mailbox, report.cc_mailbox),
            ("Quarterly report", "alice", "bob", "carol"),
        )
        self.assertEqual(greeting.subject, "Привет мир")
        self.assertEqual((greeting.cc_mailbox, legacy.cc_mailbox), ("", "erin"))
        self.assertEqual(report.internal_date, at("2024-02-01T10:00:00"))
        self.assertEqual(report.size, len(REPORT))
        self.assertEqual(await self.store.search.sort_keys(self.account.id, self.box.id, []), [])

    async def test_thread_keys(self) -> None:
        """Message-ID, In-Reply-To and References come from the cached parse; a message
        stored without a parse has none."""
        raw = crlf(
            "From: a@a.example\nSubject: Re: Re: plans\nMessage-ID: <c@x>\n"
            "In-Reply-To: <b@x>\nReferences: <a@x>\n <b@x>\n\nok\n"
        )
        blob = await self.store.incoming(raw)
        _, uid = await self.store.messages.append(
            self.account.id, "INBOX", blob, parsed=parse_message(raw).to_json()
        )
        blob = await self.store.incoming(b"Subject: bare\r\n\r\nx\r\n")
        _, bare = await self.store.messages.append(self.account.id, "INBOX", blob)
        one, two = await self.store.search.thread_keys(self.account.id, self.box.id, [bare, uid])
        self.assertEqual(
            (one.uid, one.subject, one.message_id, one.in_reply_to, one.references),
            (uid, "Re: Re: plans", "<c@x>", "<b@x>", "<a@x> <b@x>"),
        )
        self.assertEqual(
            (two.uid, two.message_id, two.in_reply_to, two.references), (bare, None, None, None)
        )

    async def test_fetch_flags(self) -> None:
        """The FLAGS-only fast path: uid, modseq, flags and keywords, in UID order."""
        from a3mail.store import search

        self.patch(search, "FLAGS_CHUNK", 3)
        records = await self.store.search.fetch_flags(
            self.account.id, self.box.id, [*reversed(self.uids), 99999]
        )
        self.assertEqual([r.uid for r in records], self.uids)
        self.assertEqual(records[0].flag_names, ("\\Seen", "\\Flagged", "$Work"))
        self.assertEqual(records[3].flag_names, ())
        full = await self.store.search.fetch_info(self.account.id, self.box.id, self.uids)
        self.assertEqual([r.modseq for r in records], [r.modseq for r in full])
        self.assertEqual(await self.store.search.fetch_flags(self.account.id, self.box.id, []), [])

    async def test_records_render_byte_exact_from_the_stored_file(self) -> None:
        """fetch_info + render_fetch over the real message file (as the FETCH command does)."""
        from a3mail.imap.fetchrender import render_fetch
        from a3mail.imap.fetchspec import parse_fetch_items

        [msg] = await self.store.search.fetch_info(
            self.account.id, self.box.id, [self.uids[0]], True
        )
        spec = parse_fetch_items(toks("(BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (cc)] ENVELOPE)"))
        with self.store.messages.open(msg) as file:
            pieces = render_fetch(spec, msg, 1, file, with_uid=True, with_modseq=False)
        response = b"".join(p for p in pieces if isinstance(p, bytes))
        self.assertTrue(
            response.startswith(b"* 1 FETCH (UID %d BODY[] {%d}\r\n" % (msg.uid, len(REPORT)))
        )
        self.assertIn(REPORT, response)
        cc = b"Cc: Carol <carol@c.example>\r\n\r\n"
        self.assertIn(b"BODY[HEADER.FIELDS (cc)] {%d}\r\n%s" % (len(cc), cc), response)
        self.assertIn(b'ENVELOPE ("Mon, 15 Jan 2024 23:30:00 -0500" "Quarterly report"', response)
