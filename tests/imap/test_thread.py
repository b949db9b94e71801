"""THREAD and UID THREAD (RFC 5256): REFERENCES and ORDEREDSUBJECT, the response format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap.threadspec import Node, ordered_subject, references, render
from a3mail.store.search import ThreadRecord
from tests.imap.support import ImapTestCase, tagged

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rec(
    uid: int, subject: str = "", msgid: str | None = None, refs: str = "", reply: str = ""
) -> ThreadRecord:
    """Message *uid*, sent *uid* hours after T0."""
    return ThreadRecord(
        uid=uid,
        internal_date=T0,
        sent_date=T0 + timedelta(hours=uid),
        subject=subject or f"subject {uid}",
        message_id=msgid if msgid is not None else f"<{uid}@x>",
        in_reply_to=reply or None,
        references=refs or None,
    )


def by_uid(roots: list[Node]) -> bytes:
    return render(roots, int)


class ReferencesTests(SynchronousTestCase):
    def test_chains_branches_and_order(self) -> None:
        records = [
            rec(1),
            rec(2, refs="<1@x>"),
            rec(3, refs="<1@x> <2@x>"),
            rec(4, reply="<1@x> <other@x>"),
            rec(5),
            rec(6, refs="<5@x> <4@x>"),  # 4 keeps its parent; 6 goes under its last reference
        ]
        self.assertEqual(by_uid(references(reversed(records))), b"(1 (2 3)(4 6))(5)")

    def test_missing_parents(self) -> None:
        records = [rec(1, refs="<gone@x>"), rec(2, refs="<gone@x>"), rec(3, refs="<lost@x>")]
        # two children of a missing message stay together; a lone one is promoted
        self.assertEqual(by_uid(references(records)), b"((1)(2))(3)")

    def test_loops_duplicates_and_missing_ids_lose_no_message(self) -> None:
        records = [
            rec(1, msgid="<a@x>", refs="<b@x>"),
            rec(2, msgid="<b@x>", refs="<a@x>"),
            rec(3, msgid="<a@x>"),  # a duplicate Message-ID
            rec(4, msgid=""),
            rec(5, msgid="<e@x>", refs="<e@x>"),  # refers to itself
        ]
        out = by_uid(references(records))
        self.assertEqual(
            sorted(int(n) for n in out.replace(b"(", b" ").replace(b")", b" ").split()),
            [1, 2, 3, 4, 5],
        )

    def test_subject_merging(self) -> None:
        records = [
            rec(1, "Hello"),
            rec(2, "Re: Hello"),
            rec(3, "Topic"),
            rec(4, "topic"),
            rec(5, "Fwd: Lonely"),
            rec(6, "Re: Other", refs="<gone@x>"),
            rec(7, "Other", refs="<gone@x>"),
        ]
        self.assertEqual(by_uid(references(records)), b"(1 2)((3)(4))(5)((6)(7))")


_IDS = st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", "<e@x>", ""])
_SUBJECTS = st.sampled_from(["x", "Re: x", "y", "Fwd: y", "[l] Re: x", "", "Re:"])


class ThreadFuzzTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(_IDS, st.lists(_IDS, max_size=4), _SUBJECTS, st.integers(0, 3)),
            min_size=1,
            max_size=25,
        )
    )
    def test_every_message_appears_exactly_once(self, specs) -> None:
        """Whatever the references (loops, duplicates, self-references, missing ids) and
        subjects, both algorithms answer every message exactly once, in a well-formed
        list."""
        records = [
            ThreadRecord(
                uid=uid,
                internal_date=T0,
                sent_date=T0 + timedelta(hours=hour),
                subject=subject,
                message_id=msgid or None,
                in_reply_to=None,
                references=" ".join(refs) or None,
            )
            for uid, (msgid, refs, subject, hour) in enumerate(specs, start=1)
        ]
        for roots in (references(records), ordered_subject(records)):
            out = render(roots, int).decode()
            self.assertEqual(out.count("("), out.count(")"))
            numbers = sorted(int(n) for n in out.replace("(", " ").replace(")", " ").split())
            self.assertEqual(numbers, list(range(1, len(records) + 1)), out)


class OrderedSubjectTests(SynchronousTestCase):
    def test_groups_by_base_subject_in_date_order(self) -> None:
        records = [rec(1, "b"), rec(2, "A"), rec(3, "Re: b"), rec(4, "B"), rec(5, "a (fwd)")]
        self.assertEqual(by_uid(ordered_subject(records)), b"(1 (3)(4))(2 5)")


class RenderTests(SynchronousTestCase):
    def test_rfc5256_example(self) -> None:
        def node(uid: int, *children: Node) -> Node:
            parent = Node(rec(uid))
            for child in children:
                parent.adopt(child)
            return parent

        tree = node(3, node(6, node(4, node(23)), node(44, node(7, node(96)))))
        placeholder = Node()
        placeholder.adopt(node(8))
        placeholder.adopt(node(9))
        self.assertEqual(
            render([node(2), tree, placeholder], int), b"(2)(3 6 (4 23)(44 7 96))((8)(9))"
        )
        self.assertEqual(render([tree], lambda uid: uid * 10), b"(30 60 (40 230)(440 70 960))")


def mail(subject: str, msgid: str, refs: str = "", day: int = 1) -> bytes:
    head = f"Subject: {subject}\r\nMessage-ID: {msgid}\r\nDate: 0{day} Jan 2024 10:00:00 +0000\r\n"
    if refs:
        head += f"References: {refs}\r\n"
    return (head + "\r\nbody\r\n").encode()


class ThreadSessionTests(ImapTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await self.deliver(mail("plans", "<p1@x>", day=1))
        await self.deliver(mail("other", "<o1@x>", day=2))
        await self.deliver(mail("Re: plans", "<p2@x>", "<p1@x>", day=3))
        await self.deliver(mail("Re: plans", "<p3@x>", "<p1@x> <p2@x>", day=4))

    async def test_capability(self) -> None:
        proto = await self.session(select=None)
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertIn(b" THREAD=ORDEREDSUBJECT THREAD=REFERENCES ", out)

    async def test_thread_and_uid_thread(self) -> None:
        proto = await self.session()
        await self.send(proto, b"x STORE 2 +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n")
        out = await self.send(proto, b"a THREAD REFERENCES UTF-8 ALL\r\n")
        self.assertEqual(out, b"* THREAD (1 2 3)\r\na OK THREAD completed\r\n")
        out = await self.send(proto, b"b UID THREAD REFERENCES UTF-8 ALL\r\n")
        self.assertEqual(out, b"* THREAD (1 3 4)\r\nb OK THREAD completed\r\n")
        out = await self.send(proto, b"c UID THREAD ORDEREDSUBJECT US-ASCII NOT UID 4\r\n")
        self.assertEqual(out, b"* THREAD (1 3)\r\nc OK THREAD completed\r\n")
        out = await self.send(proto, b"d THREAD REFERENCES UTF-8 DELETED\r\n")
        self.assertEqual(out, b"* THREAD\r\nd OK THREAD completed\r\n")

    async def test_bad_input(self) -> None:
        proto = await self.session()
        out = await self.send(proto, b"a THREAD REFERENCES KOI8-R ALL\r\n")
        self.assertEqual(tagged(out, b"a"), b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        for command in (
            b"b THREAD REFS UTF-8 ALL\r\n",
            b"c THREAD REFERENCES ALL\r\n",
            b"d THREAD\r\n",
        ):
            out = await self.send(proto, command)
            self.assertIn(b" BAD ", out, command)
