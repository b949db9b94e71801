"""THREAD (RFC 5256 sections 3-4): ORDEREDSUBJECT and REFERENCES, and the response format.

REFERENCES is the algorithm of RFC 5256 section 4 (after Jamie Zawinski's): messages are
linked by their Message-ID, References and In-Reply-To fields (loops refused), empty
containers pruned, threads whose roots share a base subject merged, and siblings sorted
by sent date (ties in mailbox order).  ORDEREDSUBJECT groups by base subject, the first
message of each group by date as the parent of the others.

Threads are answered as nested lists: ``(3 6 (4 23)(44 7 96))`` is 3, its only child 6,
whose children are 4 (child 23) and 44 (child 7, child 96); ``((3)(5))`` is two messages
under a missing common parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from a3mail.imap.sortspec import base_subject, subject_key
from a3mail.imap.tokens import ImapSyntaxError, Token
from a3mail.imap.wire import atom_upper
from a3mail.store.search import ThreadRecord

ALGORITHMS = (b"ORDEREDSUBJECT", b"REFERENCES")

_MSG_ID = re.compile(r"<([^<>\s]+)>")


def parse_algorithm(token: Token) -> bytes:
    """The THREAD algorithm named by *token*; ImapSyntaxError (BAD) for another."""
    name = atom_upper(token)
    if name not in ALGORITHMS:
        raise ImapSyntaxError("Unknown THREAD algorithm")
    return name


class Node:
    """A container of the REFERENCES algorithm: a message, or a placeholder (``record`` is
    None) for a message that is referred to but not in the result."""

    __slots__ = ("children", "parent", "record")

    def __init__(self, record: ThreadRecord | None = None) -> None:
        self.record = record
        self.parent: Node | None = None
        self.children: list[Node] = []

    def adopt(self, child: Node) -> None:
        """Make *child* (which has no parent) a child of this container."""
        child.parent = self
        self.children.append(child)

    def leave(self) -> None:
        """Detach from the parent."""
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def descends_from(self, other: Node) -> bool:
        """Whether *other* is this container or one of its ancestors."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _date(record: ThreadRecord) -> datetime:
    return record.sent_date or record.internal_date


def _sort_key(node: Node) -> tuple[datetime, int]:
    """A container's sent date (a placeholder: its first child's), then mailbox order."""
    while node.record is None and node.children:
        node = node.children[0]
    assert node.record is not None, "empty placeholders are pruned before sorting"
    return _date(node.record), node.record.uid


def _subject_of(node: Node) -> str:
    while node.record is None and node.children:
        node = node.children[0]
    return node.record.subject if node.record is not None else ""


def references(records: Iterable[ThreadRecord]) -> list[Node]:
    """The threads of *records* by the REFERENCES algorithm: the sorted root containers."""
    table: dict[str, Node] = {}
    for record in sorted(records, key=lambda r: r.uid):
        ids = _MSG_ID.findall(record.message_id or "")
        own = ids[0] if ids else None
        if own is None or (own in table and table[own].record is not None):
            own = f"\0{record.uid}"  # missing or duplicate Message-ID: a unique one
        node = table.setdefault(own, Node())
        node.record = record
        refs = (
            _MSG_ID.findall(record.references or "")
            or _MSG_ID.findall(record.in_reply_to or "")[:1]
        )
        previous: Node | None = None
        for ref in refs:  # (A) link the References chain where it adds no loop
            current = table.setdefault(ref, Node())
            if (
                previous is not None
                and current.parent is None
                and not previous.descends_from(current)
            ):
                previous.adopt(current)
            previous = current
        node.leave()  # (B) the message's own References decide its parent
        if previous is not None and not previous.descends_from(node):
            previous.adopt(node)
    roots = _prune([n for n in table.values() if n.parent is None], root=True)
    _sort_siblings(roots)  # (5) a placeholder sorts by its earliest child
    roots = _merge_subjects(roots)
    _sort_siblings(roots)
    return roots


def _prune(nodes: list[Node], *, root: bool) -> list[Node]:
    """Step 4: drop empty placeholders, and promote the children of placeholders (at the
    root only when there is a single child)."""
    out: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, root=False)
        for child in node.children:
            child.parent = node
        if node.record is None and not node.children:
            continue
        if node.record is None and (not root or len(node.children) == 1):
            for child in node.children:
                child.parent = node.parent
            out.extend(node.children)
            continue
        out.append(node)
    return out


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """Step 6: roots whose base subjects are equal become one thread."""
    # (base subject, is a reply or forward) of each root, extracted once
    keys = {id(node): subject_key(_subject_of(node)) for node in roots}
    table: dict[str, Node] = {}
    for node in roots:
        base, reply = keys[id(node)]
        if not base:
            continue
        held = table.get(base)
        if (
            held is None
            or (held.record is not None and node.record is None)
            or (keys[id(held)][1] and not reply)
        ):
            table[base] = node
    out: list[Node] = []
    for node in roots:
        if node.parent is not None:  # already merged into a thread placed earlier
            continue
        base = keys[id(node)][0]
        held = table.get(base) if base else None
        if held is None or held is node:
            out.append(node)
            continue
        if held.record is None and node.record is None:
            for child in node.children:
                held.adopt(child)
            node.children = []
        elif held.record is None:
            held.adopt(node)
        elif node.record is None:  # the placeholder takes the held thread's place
            node.adopt(held)
            table[base] = node
            _take_place(out, held, node)
        elif not keys[id(held)][1] and keys[id(node)][1]:  # both messages: original roots
            held.adopt(node)
        else:
            placeholder = Node()
            placeholder.adopt(held)
            placeholder.adopt(node)
            table[base] = placeholder
            _take_place(out, held, placeholder)
    return out


def _take_place(out: list[Node], held: Node, container: Node) -> None:
    """Put *container* where *held* stands in *out* (at the end if it is not there yet)."""
    if held in out:
        out[out.index(held)] = container
    else:
        out.append(container)


def _sort_siblings(nodes: list[Node]) -> None:
    """Step 7: every set of siblings by sent date, depth first."""
    for node in nodes:
        _sort_siblings(node.children)
    nodes.sort(key=_sort_key)


def ordered_subject(records: Iterable[ThreadRecord]) -> list[Node]:
    """The threads of *records* by ORDEREDSUBJECT: per base subject, the earliest message
    the parent of the others; threads in the order of their first messages."""
    groups: dict[str, list[ThreadRecord]] = {}
    for record in sorted(records, key=lambda r: (_date(r), r.uid)):
        groups.setdefault(base_subject(record.subject or ""), []).append(record)
    roots = []
    for first, *rest in groups.values():
        parent = Node(first)
        for record in rest:
            parent.adopt(Node(record))
        roots.append(parent)
    roots.sort(key=_sort_key)
    return roots


def thread(records: Sequence[ThreadRecord], algorithm: bytes) -> list[Node]:
    """The threads of *records* by *algorithm* (one of :data:`ALGORITHMS`)."""
    if algorithm == b"REFERENCES":
        return references(records)
    return ordered_subject(records)


def render(roots: Sequence[Node], number: Any) -> bytes:
    """The data of ``* THREAD``: each thread as a parenthesised list, messages as
    ``number(uid)`` (a sequence number or the UID)."""
    return b"".join(_render(node, number) for node in roots)


def _render(node: Node, number: Any) -> bytes:
    members: list[bytes] = []
    while node.record is not None and len(node.children) == 1:
        members.append(b"%d" % number(node.record.uid))
        node = node.children[0]
    if node.record is not None:
        members.append(b"%d" % number(node.record.uid))
    nested = b"".join(_render(child, number) for child in node.children)
    if nested:
        members.append(nested)
    return b"(" + b" ".join(members) + b")"
