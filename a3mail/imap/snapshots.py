"""A per-process cache of mailbox snapshots, so that a warm SELECT of a big mailbox costs
one small query (the mailbox row) and array copies, not a read of every message row.

Entries are keyed by (mailbox id, UIDVALIDITY, HIGHESTMODSEQ): every change to a mailbox
(new message, flags, expunge) raises its HIGHESTMODSEQ, so a key that still matches the
mailbox row names exactly the state that was read.  (A snapshot read after the row may
hold later changes; its key then never matches again, since the row has moved on.)
"""

from __future__ import annotations

from array import array
from collections import OrderedDict

import attrs

#: Mailboxes smaller than this are read each time (cheap) and not cached.
MIN_CACHED = 1000
#: How many mailbox snapshots one process keeps (least recently used dropped).
MAX_ENTRIES = 32

Key = tuple[int, int, int]


@attrs.frozen
class Snapshot:
    """UIDs, flag bits and modseqs (parallel arrays) and the keywords of a mailbox."""

    uids: array[int]
    bits: array[int]
    modseqs: array[int]
    keywords: dict[int, tuple[str, ...]]


class SnapshotCache:
    """Least-recently-used snapshots of big mailboxes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, min_cached: int = MIN_CACHED) -> None:
        self.max_entries = max_entries
        self.min_cached = min_cached
        self._entries: OrderedDict[Key, Snapshot] = OrderedDict()

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
        """Remember a copy of a freshly read snapshot of a big mailbox."""
        if len(snapshot.uids) < self.min_cached:
            return
        for old in [k for k in self._entries if k[0] == key[0]]:
            del self._entries[old]  # older states of the same mailbox
        self._entries[key] = Snapshot(
            array("q", snapshot.uids),
            array("i", snapshot.bits),
            array("q", snapshot.modseqs),
            dict(snapshot.keywords),
        )
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
