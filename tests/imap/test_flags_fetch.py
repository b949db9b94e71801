"""The view renders FLAGS/UID/MODSEQ-only FETCH responses from its cache in one pass:
the same bytes as a per-message rendering, for any item order, gaps and CHANGEDSINCE."""

from __future__ import annotations

import itertools
import random
from array import array

from twisted.trial.unittest import SynchronousTestCase

from a3mail.imap.selected import SelectedMailbox
from a3mail.imap.wire import flags_text


class _View(SelectedMailbox):
    def __init__(self, uids: list[int], rng: random.Random) -> None:  # no store needed
        self.uids = array("q", uids)
        self._bits = array("i", [rng.randrange(32) for _ in uids])
        self._modseqs = array("q", [rng.randrange(1, 50) for _ in uids])
        self._keywords = {u: ("$Work", "Later") for u in uids if rng.random() < 0.1}


def reference(view: _View, uids: list[int], names: list[str], since: int | None) -> bytes:
    out = []
    for uid in uids:
        seq = view.seq_of(uid)
        state = view.state(uid)
        if seq is None or state is None:
            continue
        bits, keywords, modseq = state
        if since is not None and modseq <= since:
            continue
        parts = {
            "UID": b"UID %d" % uid,
            "FLAGS": b"FLAGS (" + flags_text(bits, keywords) + b")",
            "MODSEQ": b"MODSEQ (%d)" % modseq,
        }
        out.append(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts[n] for n in names)))
    return b"".join(out)


class FlagsFetchTests(SynchronousTestCase):
    def test_same_bytes_as_one_message_at_a_time(self) -> None:
        rng = random.Random(7)
        view = _View(sorted(rng.sample(range(1, 400), 150)), rng)
        asked_sets = [
            list(view.uids),
            sorted(rng.sample(range(1, 450), 120)),  # gaps and UIDs the view lacks
            [int(view.uids[-1]) + 5],
            [],
        ]
        orders = [
            list(p)
            for k in (1, 2, 3)
            for p in itertools.permutations(["UID", "FLAGS", "MODSEQ"], k)
        ]
        for asked, names, since in itertools.product(asked_sets, orders, (None, 0, 25)):
            self.assertEqual(
                view.flags_fetch(asked, names, since),
                reference(view, asked, names, since),
                (names, since),
            )
