"""The selected mailbox as one session sees it: sequence numbers, flags, pending changes.

A :class:`SelectedMailbox` keeps the session's sequence-number-to-UID list and a flags
cache, and listens on the store's event bus for changes made by anyone (this or another
session, this or another a3mail process).  Changes are only *noted* when they arrive; the
session turns them into untagged responses (``EXISTS``, ``EXPUNGE``, ``FETCH (FLAGS)``)
when it may (:meth:`updates`), so sequence numbers never change under the client's feet:
``EXPUNGE`` is held back during FETCH, STORE and SEARCH (RFC 3501 7.4.1).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from a3mail.imap.qresync import vanished_line
from a3mail.imap.snapshots import Snapshot, SnapshotCache
from a3mail.imap.wire import flags_text
from a3mail.logs import get_logger
from a3mail.store import events
from a3mail.store.mailbox_state import MessageState
from a3mail.store.records import Flag, Mailbox, flag_names

log = get_logger(__name__)

FlagState = tuple[int, tuple[str, ...], int]  # bits, keywords, modseq


class SelectedMailbox:
    """One session's view of its selected mailbox."""

    def __init__(
        self, store: Any, mailbox: Mailbox, readonly: bool, cache: SnapshotCache | None = None
    ) -> None:
        self.store = store
        self.cache = cache
        self.mailbox = mailbox
        self.account_id = mailbox.account_id
        self.readonly = readonly
        # Parallel compact arrays (a few bytes per message, not a dict of tuples): UIDs in
        # sequence order, their flag bits and modseqs; keywords only where there are some.
        self.uids: array[int] = array("q")
        self._bits: array[int] = array("i")
        self._modseqs: array[int] = array("q")
        self._keywords: dict[int, tuple[str, ...]] = {}
        self.highest_modseq = mailbox.highestmodseq
        self.uidnext = mailbox.uidnext
        self.deleted = False
        self.on_change: Callable[[], None] | None = None
        self._expunged: set[int] = set()
        # UIDs whose flags another change touched -> that change's modseq (None: unknown).
        self._flag_uids: dict[int, int | None] = {}
        # ... and their new state when the change's event carried it (no read needed).
        self._flag_states: dict[int, MessageState] = {}
        self._added = False  # messages were added that must be read from the index
        # messages added elsewhere whose event said all the view needs (no read), by UID
        self._announced: dict[int, MessageState] = {}
        self._resync = False
        self._unsubscribe: Callable[[], None] | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def load(self) -> None:
        """Read the mailbox's messages and start listening for changes."""
        self._unsubscribe = self.store.events.subscribe(self._event)
        mailbox = self.mailbox
        key = (mailbox.id, mailbox.uidvalidity, mailbox.highestmodseq)
        snapshot = self.cache.get(key) if self.cache is not None else None
        if snapshot is None:
            read = await self.store.mailbox_states.snapshot(self.account_id, mailbox.id)
            snapshot = Snapshot(
                array("q", read.uids),
                array("i", read.flags),
                array("q", read.modseqs),
                dict(read.keywords),
            )
            if self.cache is not None:
                self.cache.put(key, snapshot)
        self.uids = snapshot.uids
        self._bits = snapshot.bits
        self._modseqs = snapshot.modseqs
        self._keywords = snapshot.keywords
        if self.uids:
            self.uidnext = max(self.uidnext, self.uids[-1] + 1)

    def close(self) -> None:
        """Stop listening."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self.on_change = None

    def _append(self, info: MessageState) -> None:
        self.uids.append(info.uid)
        self._bits.append(info.flags)
        self._modseqs.append(info.modseq)
        if info.keywords:
            self._keywords[info.uid] = tuple(info.keywords)
        self.uidnext = max(self.uidnext, info.uid + 1)

    # -- queries ------------------------------------------------------------------------

    @property
    def exists(self) -> int:
        """The message count as the client knows it."""
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of a UID, or None."""
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def __contains__(self, uid: int) -> bool:
        return self.seq_of(uid) is not None

    def state(self, uid: int) -> FlagState | None:
        """Cached (flag bits, keywords, modseq) of a message, or None."""
        seq = self.seq_of(uid)
        if seq is None:
            return None
        return self._bits[seq - 1], self._keywords.get(uid, ()), self._modseqs[seq - 1]

    def flags_fetch(
        self, uids: Sequence[int], names: Sequence[str], changed_since: int | None = None
    ) -> bytes:
        """``* n FETCH (...)`` lines for ascending *uids* from the cache, with the items
        *names* (``UID``, ``FLAGS``, ``MODSEQ``, in that order of the response), skipping
        UIDs not in the view and messages not changed since *changed_since*.  One pass over
        the arrays (no per-UID search): ``UID FETCH 1:* (FLAGS)`` over 100,000 messages
        renders in about 60 ms here."""
        pieces = {"UID": (b"UID %d", 0), "FLAGS": (b"FLAGS (%b)", 1), "MODSEQ": (b"MODSEQ (%d)", 2)}
        fmt = b"* %d FETCH (" + b" ".join(pieces[name][0] for name in names) + b")\r\n"
        pick = [pieces[name][1] for name in names]
        view_uids, bits, modseqs, keywords = self.uids, self._bits, self._modseqs, self._keywords
        floor = -1 if changed_since is None else changed_since
        out: list[bytes] = []
        append = out.append
        size = len(view_uids)
        pos = bisect.bisect_left(view_uids, uids[0]) if uids else size
        for uid in uids:
            while pos < size and view_uids[pos] < uid:
                pos += 1
            if pos >= size:
                break
            if view_uids[pos] != uid or modseqs[pos] <= floor:
                continue
            text = flags_text(bits[pos], keywords.get(uid, ()) if keywords else ())
            if pick == [0, 1]:
                append(fmt % (pos + 1, uid, text))
            elif pick == [0, 1, 2]:
                append(fmt % (pos + 1, uid, text, modseqs[pos]))
            else:
                values = (uid, text, modseqs[pos])
                append(fmt % (pos + 1, *[values[i] for i in pick]))
        return b"".join(out)

    def changed_since(self, modseq: int) -> list[tuple[int, int]]:
        """(sequence number, UID) of the messages whose cached MODSEQ is above *modseq*."""
        uids, modseqs = self.uids, self._modseqs
        return [(i + 1, uids[i]) for i in range(len(uids)) if modseqs[i] > modseq]

    def is_seen(self, uid: int) -> bool:
        """Whether the cache has ``\\Seen`` on the message."""
        seq = self.seq_of(uid)
        return seq is not None and bool(self._bits[seq - 1] & Flag.SEEN)

    def keywords(self) -> list[str]:
        """Every keyword in use in the mailbox (for the FLAGS response)."""
        found: set[str] = set()
        for keywords in self._keywords.values():
            found.update(keywords)
        return sorted(found)

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without ``\\Seen``."""
        for index, bits in enumerate(self._bits):
            if not bits & Flag.SEEN:
                return index + 1
        return None

    # -- changes made by this session ----------------------------------------------------

    def note_own_modseq(self, modseq: int) -> None:
        """A modseq this session produced (its bus event finds the cache already at it, so
        it needs no untagged response, whether it arrives before or after this call)."""
        self.highest_modseq = max(self.highest_modseq, modseq)

    def set_flags(self, uid: int, bits: int, keywords: Sequence[str], modseq: int) -> None:
        """Update the cache after this session changed a message's flags."""
        seq = self.seq_of(uid)
        if seq is None:
            return
        self._bits[seq - 1] = bits
        self._modseqs[seq - 1] = modseq
        if keywords:
            self._keywords[uid] = tuple(keywords)
        else:
            self._keywords.pop(uid, None)

    def remove(self, uid: int) -> int | None:
        """Drop an expunged message; returns the sequence number it had."""
        seq = self.seq_of(uid)
        if seq is not None:
            del self.uids[seq - 1]
            del self._bits[seq - 1]
            del self._modseqs[seq - 1]
            self._keywords.pop(uid, None)
        self._expunged.discard(uid)
        return seq

    def expunge_lines(self, uids: Iterable[int], qresync: bool) -> list[bytes]:
        """Drop expunged messages from the view and say so: ``* n EXPUNGE`` (highest first),
        or one ``* VANISHED uids`` for a QRESYNC session."""
        removed = [
            (uid, seq)
            for uid in sorted(uids, reverse=True)
            if (seq := self.remove(uid)) is not None
        ]
        if qresync:
            return [vanished_line((uid for uid, _ in removed), earlier=False)] if removed else []
        return [b"* %d EXPUNGE\r\n" % seq for _, seq in removed]

    # -- changes from the bus ------------------------------------------------------------

    def _event(self, event: events.Event) -> None:
        data = event.data
        if event.type == events.BUS_RECONNECTED:
            self._resync = True
        elif data.get("mailbox_id") != self.mailbox.id:
            return
        elif event.type == events.MESSAGE_ADDED:
            state = _added_state(data)
            if state is None:
                self._added = True
            elif not self.uids or state.uid > self.uids[-1]:
                self._announced[state.uid] = state
        elif event.type == events.EXPUNGED:
            uids = data.get("uids")
            if uids is None:
                self._resync = True
            else:
                self._expunged.update(int(u) for u in uids)
                for uid in uids:  # announced, then expunged before the view took it
                    self._announced.pop(int(uid), None)
        elif event.type == events.FLAGS_CHANGED:
            modseq = data.get("modseq")
            modseq = modseq if isinstance(modseq, int) else None
            uids = data.get("uids")
            if uids is None:
                self._resync = True
            else:
                states = _event_states(data.get("states"), modseq)
                self._update_announced([int(u) for u in uids], states)
                fresh = [int(u) for u in uids if not self._has_change(int(u), modseq)]
                if not fresh:
                    return  # this session's own change, already in the cache
                for uid in fresh:
                    self._flag_uids[uid] = modseq
                    if uid in states:
                        self._flag_states[uid] = states[uid]
                    else:  # an older state noted for it is stale now: read it
                        self._flag_states.pop(uid, None)
        elif event.type in (events.MAILBOX_DELETED, events.MAILBOX_RENAMED):
            self.deleted = event.type == events.MAILBOX_DELETED
            self._resync = True
        else:
            return
        if self.on_change is not None:
            self.on_change()

    def _update_announced(self, uids: list[int], states: dict[int, MessageState]) -> None:
        """Flags changed of messages announced but not yet in the view: take their new
        state, or read them if the event did not carry it."""
        for uid in uids:
            if uid in self._announced:
                if uid in states:
                    self._announced[uid] = states[uid]
                else:
                    del self._announced[uid]
                    self._added = True

    def _has_change(self, uid: int, modseq: int | None) -> bool:
        """True if the cache already holds the change of *modseq* to *uid* (or the message
        is not in the view): nothing to report or read for it."""
        seq = self.seq_of(uid)
        if seq is None:
            return True
        return modseq is not None and self._modseqs[seq - 1] >= modseq

    def note_own_append(self, state: MessageState) -> None:
        """This session appended a message to the mailbox: report it at the end of the
        command, without waiting for its event.  Taken as is when it is the next UID the
        view expects; if its UID leaves a gap (another session's message whose event is
        still on its way), everything new is read instead, so that none is skipped."""
        expected = self._next_uid
        if state.uid == expected:
            self._announced[state.uid] = state
        elif state.uid > expected:
            self._added = True

    @property
    def _next_uid(self) -> int:
        """The UID the view expects next: past what it holds and what was announced."""
        return max(self.uidnext, max(self._announced, default=0) + 1)

    def note_possible_change(self, mailbox: Mailbox) -> None:
        """Compare a fresh mailbox row with the view (in case an event is still on its way)."""
        if mailbox.uidnext > self._next_uid:
            self._added = True
        if mailbox.message_count < len(self.uids) - len(self._expunged):
            self._resync = True

    @property
    def has_pending(self) -> bool:
        """True when :meth:`updates` has something to report."""
        return bool(
            self._added or self._announced or self._resync or self._expunged or self._flag_uids
        )

    async def updates(
        self, *, allow_expunge: bool, condstore: bool, qresync: bool = False
    ) -> list[bytes]:
        """Untagged responses for the changes noted since the last call (expunges as one
        ``VANISHED`` when the session enabled QRESYNC)."""
        lines: list[bytes] = []
        if self._resync:
            self._resync = False
            self._flag_states.clear()  # the resync reads what changed and what is new
            self._announced.clear()
            await self._full_resync()
        if allow_expunge and self._expunged:
            lines += self.expunge_lines(self._expunged, qresync)
            self._expunged.clear()
        if self._added or self._announced:
            before = len(self.uids)
            last = self.uids[-1] if self.uids else 0
            read, self._added = self._added, False
            infos = [self._announced[uid] for uid in sorted(self._announced)]
            self._announced.clear()
            if read:  # what the events did not say: read every new message
                infos = await self.store.mailbox_states.messages(
                    self.account_id, self.mailbox.id, min_uid=last + 1
                )
            for info in infos:
                newest = self.uids[-1] if self.uids else 0
                if info.uid > newest and info.uid not in self._expunged:
                    self._append(info)
            if len(self.uids) != before:
                lines.append(b"* %d EXISTS\r\n" % len(self.uids))
        if self._flag_uids:
            changed = sorted(
                u for u, modseq in self._flag_uids.items() if not self._has_change(u, modseq)
            )
            known = {u: self._flag_states[u] for u in changed if u in self._flag_states}
            self._flag_uids.clear()
            self._flag_states.clear()
            lines += await self._flag_updates(changed, condstore, known)
        return lines

    async def _flag_updates(
        self,
        uids: list[int],
        condstore: bool,
        known: dict[int, MessageState] | None = None,
    ) -> list[bytes]:
        """``FETCH (FLAGS ..)`` lines for messages whose flags changed, in UID order: from
        the states the events carried (*known*), the others read from the index."""
        if not uids:
            return []
        states = {uid: (s.flags, s.keywords, s.modseq) for uid, s in (known or {}).items()}
        unknown = [u for u in uids if u not in states]
        if unknown:
            for info in await self.load_infos(unknown):
                states[info.uid] = (info.flags, tuple(info.keywords), info.modseq)
        lines = []
        for uid in sorted(states):
            seq = self.seq_of(uid)
            if seq is None:
                continue
            state = states[uid]
            if self.state(uid) == state:
                continue
            self.set_flags(uid, *state)
            self.highest_modseq = max(self.highest_modseq, state[2])
            lines.append(self.flags_line(seq, uid, condstore))
        return lines

    def flags_line(self, seq: int, uid: int, condstore: bool) -> bytes:
        """``* seq FETCH (FLAGS (...) UID u [MODSEQ (m)])``."""
        from a3mail.imap.wire import flag_list

        state = self.state(uid)
        assert state is not None
        bits, keywords, modseq = state
        line = b"* %d FETCH (FLAGS %s UID %d" % (seq, flag_list(flag_names(bits, keywords)), uid)
        if condstore:
            line += b" MODSEQ (%d)" % modseq
        return line + b")\r\n"

    async def load_infos(self, uids: Sequence[int]) -> list[Any]:
        """Index entries of some messages of the mailbox, in UID order."""
        out: list[Any] = []
        for start in range(0, len(uids), 1000):
            out += await self.store.search.fetch_info(
                self.account_id, self.mailbox.id, list(uids[start : start + 1000]), False
            )
        return out

    async def _full_resync(self) -> None:
        infos = await self.store.mailbox_states.messages(self.account_id, self.mailbox.id)
        current = {i.uid: i for i in infos}
        gone = [u for u in self.uids if u not in current]
        self._expunged.update(gone)
        known = set(self.uids)
        for info in infos:
            if info.uid not in known:
                self._added = True
            elif (self.state(info.uid) or (0, (), 0))[:2] != (info.flags, tuple(info.keywords)):
                self._flag_uids[info.uid] = None


def _state(uid: Any, flags: Any, keywords: Any, modseq: Any) -> MessageState | None:
    """A message's state as an event gave it, if every part has its type; None otherwise
    (the message is then read from the index)."""
    if (
        isinstance(uid, int)
        and isinstance(flags, int)
        and isinstance(modseq, int)
        and isinstance(keywords, list)
        and all(isinstance(k, str) for k in keywords)
    ):
        return MessageState(uid, flags, tuple(keywords), modseq)
    return None


def _event_states(raw: Any, modseq: int | None) -> dict[int, MessageState]:
    """The new states a ``flags.changed`` event carried (``[[uid, flags, [keywords]], ..]``,
    all of the event's modseq), by UID; entries not of that shape are left out."""
    if not isinstance(raw, list):
        return {}
    states = (
        _state(entry[0], entry[1], entry[2], modseq)
        if isinstance(entry, list) and len(entry) == 3
        else None
        for entry in raw
    )
    return {state.uid: state for state in states if state is not None}


def _added_state(data: dict[str, Any]) -> MessageState | None:
    """A ``message.added`` event's message as the view keeps it, if the event says all of
    it (UID, flags, keywords, modseq)."""
    return _state(data.get("uid"), data.get("flags"), data.get("keywords"), data.get("modseq"))
