"""A per-process cache of mailbox snapshots, so that a warm SELECT costs one small query
(the mailbox row) and array copies, not a read of every message row.

Every mailbox is cached, small ones too: for them the saving is a round trip (a third of
a SELECT's time), for big ones the read of every row.  The cache is bounded by entries
and by the messages it holds in all (about 20 bytes each), least recently used first.

Entries are keyed by (mailbox id, UIDVALIDITY, HIGHESTMODSEQ): every change to a mailbox
(new message, flags, expunge) raises its HIGHESTMODSEQ, so a key that still matches the
mailbox row names exactly the state that was read.  (A snapshot read after the row may
hold later changes; its key then never matches again, since the row has moved on.)
"""

from __future__ import annotations

from array import array
from collections import OrderedDict

import attrs

#: How many mailbox snapshots one process keeps at most (least recently used dropped).
MAX_ENTRIES = 512
#: How many messages all of them hold at most (~20 bytes each: about 20 MB); a mailbox
#: bigger than this alone is not cached.
MAX_MESSAGES = 1_000_000

Key = tuple[int, int, int]


@attrs.frozen
class Snapshot:
    """UIDs, flag bits and modseqs (parallel arrays) and the keywords of a mailbox."""

    uids: array[int]
    bits: array[int]
    modseqs: array[int]
    keywords: dict[int, tuple[str, ...]]


class SnapshotCache:
    """Least-recently-used snapshots of mailboxes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_messages: int = MAX_MESSAGES) -> None:
        self.max_entries = max_entries
        self.max_messages = max_messages
        self._entries: OrderedDict[Key, Snapshot] = OrderedDict()
        self._messages = 0  # held by all entries

    def get(self, key: Key) -> Snapshot | None:
        """A copy of the cached snapshot for *key* (the caller may change it), or None."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return Snapshot(
            array("q", found.uids),
            array("i", found.bits),
            array("q", found.modseqs),
            dict(found.keywords),
        )

    def put(self, key: Key, snapshot: Snapshot) -> None:
        """Remember a copy of a freshly read snapshot."""
        if len(snapshot.uids) > self.max_messages:
            return
        for old in [k for k in self._entries if k[0] == key[0]]:
            self._drop(old)  # older states of the same mailbox
        self._entries[key] = Snapshot(
            array("q", snapshot.uids),
            array("i", snapshot.bits),
            array("q", snapshot.modseqs),
            dict(snapshot.keywords),
        )
        self._messages += len(snapshot.uids)
        while len(self._entries) > self.max_entries or self._messages > self.max_messages:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Key) -> None:
        self._messages -= len(self._entries.pop(key).uids)

    @property
    def messages(self) -> int:
        """How many messages the cached snapshots hold in all."""
        return self._messages

    def __len__(self) -> int:
        return len(self._entries)
