"""Changes by other sessions (and other a3mail processes) reach a session as untagged
responses: at its next command, or at once while it IDLEs."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from a3mail.store import events
from tests.imap.support import MESSAGE, ImapTestCase, tagged


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll *predicate* on the real reactor until it holds (store events are real I/O)."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("timed out waiting")
        await deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


class UpdateTests(ImapTestCase):
    def heard(self, event_type: str, store: Any = None) -> Deferred[events.Event]:
        """Fires when *store*'s bus delivers the next event of *event_type*."""
        done: Deferred[events.Event] = Deferred()
        bus = (store or self.store).events

        def listener(event: events.Event) -> None:
            if event.type == event_type and not done.called:
                unsubscribe()
                done.callback(event)

        unsubscribe = bus.subscribe(listener)
        return done

    async def test_flag_change_and_expunge_by_another_session(self):
        await self.deliver()
        await self.deliver()
        first = await self.session()
        second = await self.session()
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(second, b"a STORE 1 +FLAGS (\\Flagged)\r\n")
        await heard
        out = await self.send(first, b"b NOOP\r\n")
        self.assertEqual(out, b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\nb OK NOOP completed\r\n")
        heard = self.heard(events.EXPUNGED)
        await self.send(second, b"c STORE 1 +FLAGS.SILENT (\\Deleted)\r\nd EXPUNGE\r\n")
        await heard
        out = await self.send(first, b"e FETCH 1:2 UID\r\n")
        self.assertNotIn(b"EXPUNGE", out)  # RFC 3501 7.4.1: not during FETCH
        self.assertIn(b"* 2 FETCH (UID 2)", out)
        out = await self.send(first, b"f NOOP\r\n")
        self.assertIn(b"* 1 EXPUNGE\r\n", out)
        out = await self.send(first, b"g FETCH 1 UID\r\n")
        self.assertIn(b"* 1 FETCH (UID 2)", out)

    async def test_flags_changed_elsewhere_are_applied_from_the_event(self):
        """The event carries the new flags: the other session reports them without reading
        the messages back."""
        await self.deliver()
        await self.deliver()
        first = await self.session()
        second = await self.session()
        reads = self.count_calls(self.store.search, "fetch_info")
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(second, b"a STORE 1:2 +FLAGS ($Work \\Seen)\r\n")
        await heard
        out = await self.send(first, b"b NOOP\r\n")
        self.assertEqual(
            out,
            b"* 1 FETCH (FLAGS (\\Seen $Work) UID 1)\r\n"
            b"* 2 FETCH (FLAGS (\\Seen $Work) UID 2)\r\nb OK NOOP completed\r\n",
        )
        self.assertEqual(reads, [])
        out = await self.send(first, b"c FETCH 1:2 (FLAGS)\r\n")
        self.assertIn(b"* 2 FETCH (FLAGS (\\Seen $Work))", out)

    async def test_a_change_announced_without_its_state_is_read_from_the_index(self):
        """An event with only UIDs (its states did not fit NOTIFY) after one with states for
        the same message: the older state is not used, the message is read."""
        await self.deliver()
        first = await self.session()
        second = await self.session()
        reads = self.count_calls(self.store.search, "fetch_info")
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(second, b"a STORE 1 +FLAGS (\\Flagged)\r\n")
        event = await heard
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(second, b"b STORE 1 +FLAGS ($Later)\r\n")
        later = await heard
        view = first.selected
        view._flag_uids.clear()
        view._flag_states.clear()
        view._event(event)  # as heard: with its state
        view._event(events.Event(later.type, {**later.data, "states": None}))
        out = await self.send(first, b"c NOOP\r\n")
        self.assertEqual(
            out, b"* 1 FETCH (FLAGS (\\Flagged $Later) UID 1)\r\nc OK NOOP completed\r\n"
        )
        self.assertEqual(len(reads), 1)

    async def test_new_messages_are_added_from_their_events(self):
        await self.deliver()
        proto = await self.session()
        reads = self.count_calls(self.store.mailbox_states, "messages")
        for _ in range(2):
            heard = self.heard(events.MESSAGE_ADDED)
            await self.deliver()
            await heard
        out = await self.send(proto, b"a NOOP\r\n")
        self.assertEqual(out, b"* 3 EXISTS\r\na OK NOOP completed\r\n")
        self.assertEqual(reads, [])
        out = await self.send(proto, b"b FETCH 2:3 (UID FLAGS)\r\n")
        self.assertIn(b"* 3 FETCH (UID 3 FLAGS ())", out)

    async def test_a_message_announced_then_expunged_is_never_shown(self):
        await self.deliver()
        first = await self.session()
        second = await self.session()
        heard = self.heard(events.EXPUNGED)
        await self.send(
            second, b"a APPEND INBOX (\\Deleted) {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE)
        )
        await self.send(second, b"b EXPUNGE\r\n")
        await heard
        out = await self.send(first, b"c NOOP\r\n")
        self.assertEqual(out, b"c OK NOOP completed\r\n")
        out = await self.send(first, b"d FETCH 1:* UID\r\n")
        self.assertEqual(out, b"* 1 FETCH (UID 1)\r\nd OK FETCH completed\r\n")

    async def test_flags_changed_before_an_announced_message_is_shown_are_not_lost(self):
        await self.deliver()
        first = await self.session()
        second = await self.session()
        reads = self.count_calls(self.store.mailbox_states, "messages")
        await self.send(second, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(second, b"b STORE 2 +FLAGS (\\Flagged)\r\n")
        await heard
        out = await self.send(first, b"c NOOP\r\n")
        self.assertEqual(out, b"* 2 EXISTS\r\nc OK NOOP completed\r\n")
        out = await self.send(first, b"d FETCH 2 (FLAGS)\r\n")
        self.assertEqual(out, b"* 2 FETCH (FLAGS (\\Flagged))\r\nd OK FETCH completed\r\n")
        self.assertEqual(reads, [])

    async def test_append_to_the_selected_mailbox_answers_exists_at_once(self):
        await self.deliver()
        proto = await self.session()
        reads = self.count_calls(self.store.mailbox_states, "messages")
        out = await self.send(
            proto, b"a APPEND INBOX (\\Seen $Mine) {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE)
        )
        self.assertRegex(out, rb"^\* 2 EXISTS\r\na OK \[APPENDUID \d+ 2\] APPEND completed")
        self.assertEqual(reads, [])
        out = await self.send(proto, b"b FETCH 2 (FLAGS)\r\n")
        self.assertEqual(out, b"* 2 FETCH (FLAGS (\\Seen $Mine))\r\nb OK FETCH completed\r\n")

    async def test_own_append_after_an_unheard_one_reads_everything_new(self):
        """Another session's message whose event has not been heard yet comes before this
        session's own: the view reads both rather than skip the first."""
        await self.deliver()
        proto = await self.session()
        proto.selected._unsubscribe()  # as if no event (that one's, our own) had come yet
        await self.deliver()
        reads = self.count_calls(self.store.mailbox_states, "messages")
        out = await self.send(proto, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        self.assertIn(b"* 3 EXISTS\r\n", out)
        self.assertEqual(len(reads), 1)
        out = await self.send(proto, b"b FETCH 1:* (UID)\r\n")
        self.assertIn(b"* 2 FETCH (UID 2)", out)

    async def test_own_store_is_not_echoed_later(self):
        await self.deliver()
        proto = await self.session()
        heard = self.heard(events.FLAGS_CHANGED)
        await self.send(proto, b"a STORE 1 +FLAGS (\\Seen)\r\n")
        await heard
        out = await self.send(proto, b"b NOOP\r\n")
        self.assertEqual(out, b"b OK NOOP completed\r\n")

    async def test_own_store_event_heard_before_the_store_returns_is_not_echoed(self):
        """The bus may deliver a session's own change before store_flags' answer: the view
        sees the event's modseq already in its cache and neither reads nor reports it."""
        await self.deliver()
        proto = await self.session()
        messages, search = self.store.messages, self.store.search
        original, original_info = messages.store_flags, search.fetch_info
        info_reads = []

        def store_flags_with_early_event(account_id, mailbox_id, uids, *args, **kwargs):
            def announce(result):
                changes, _ = result
                self.store.events.dispatch(
                    events.Event(
                        events.FLAGS_CHANGED,
                        {
                            "account_id": account_id,
                            "mailbox_id": mailbox_id,
                            "modseq": changes[0].modseq,
                            "uids": [c.uid for c in changes],
                        },
                    )
                )
                return result

            return original(account_id, mailbox_id, uids, *args, **kwargs).addCallback(announce)

        def counting_fetch_info(*args, **kwargs):
            info_reads.append(args)
            return original_info(*args, **kwargs)

        self.patch(messages, "store_flags", store_flags_with_early_event)
        self.patch(search, "fetch_info", counting_fetch_info)
        out = await self.send(proto, b"a STORE 1 +FLAGS (\\Flagged)\r\n")
        self.assertEqual(out, b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\na OK STORE completed\r\n")
        out = await self.send(proto, b"b NOOP\r\n")
        self.assertEqual(out, b"b OK NOOP completed\r\n")
        self.assertEqual(info_reads, [])

    async def test_idle_pushes_changes_from_another_process(self):
        """Two Store objects on one database: two a3mail processes sharing it."""
        await self.deliver()
        other_store = self.make_store(application_name="a3mail-test:other")
        await other_store.open()
        self.addCleanup(other_store.close)
        await wait_for(lambda: other_store.events.connected and self.store.events.connected)
        other = await self.session(factory=self.make_factory_on(other_store))
        idler = await self.session()
        transport = idler.transport
        out = await self.send(idler, b"i IDLE\r\n")
        self.assertEqual(out, b"+ idling\r\n")
        await self.send(other, b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        await wait_for(lambda: b"* 2 EXISTS\r\n" in transport.value())
        await self.send(other, b"b STORE 1 +FLAGS (\\Answered)\r\n")
        await wait_for(lambda: b"* 1 FETCH (FLAGS (\\Answered) UID 1)" in transport.value())
        await self.send(other, b"c UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\nd EXPUNGE\r\n")
        await wait_for(lambda: b"* 1 EXPUNGE\r\n" in transport.value())
        transport.clear()
        out = await self.send(idler, b"x NOOP\r\n")
        self.assertEqual(out, b"* BAD Expected DONE\r\n")  # only DONE ends IDLE
        out = await self.send(idler, b"DONE\r\n")
        self.assertEqual(out, b"i OK IDLE terminated\r\n")
        out = await self.send(idler, b"f FETCH 1 UID\r\n")
        self.assertIn(b"* 1 FETCH (UID 2)", out)

    async def test_selected_mailbox_deleted_elsewhere(self):
        await self.store.mailboxes.create(self.alice.id, "Temp")
        proto = await self.session(select="Temp")
        heard = self.heard(events.MAILBOX_DELETED)
        await self.store.mailboxes.delete(self.alice.id, "Temp")
        await heard
        out = await self.send(proto, b"a NOOP\r\n")
        self.assertIn(b"* BYE", out)
        self.assertFalse(proto.transport.connected)

    async def test_new_message_seen_at_next_command_even_before_its_event(self):
        proto = await self.session()
        proto.selected._event = lambda event: None  # the bus is slow today
        await self.deliver()
        out = await self.send(proto, b"a NOOP\r\n")
        self.assertIn(b"* 1 EXISTS\r\n", out)
        self.assertEqual(tagged(out, b"a"), b"OK NOOP completed")

    def make_factory_on(self, store: Any) -> Any:
        factory = self.make_factory()
        factory.store = store
        return factory
