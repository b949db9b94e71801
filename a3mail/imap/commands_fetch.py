"""FETCH and UID FETCH: index records in chunks, responses rendered by
:mod:`a3mail.imap.fetchrender`, big literals streamed from the message file with flow
control (the transport's pause/resume), so a FETCH over a huge mailbox or of a huge
message holds neither in memory."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from a3mail.imap import framing
from a3mail.imap.fetchfast import compile_fetch
from a3mail.imap.fetchrender import FileRange, render_fetch
from a3mail.imap.fetchspec import parse_fetch_items
from a3mail.imap.qresync import expunged_in, parse_fetch_modifiers, vanished_line
from a3mail.imap.session import SessionAPI
from a3mail.imap.tokens import ImapSyntaxError, Token
from a3mail.imap.wire import Ranges, is_saved_result, number_ranges, parse_sequence_set
from a3mail.logs import get_logger

log = get_logger(__name__)

CHUNK_UIDS = 500
CHUNK_FLAGS_ONLY = 20_000
#: The first chunk of a FLAGS-only FETCH is small, so the client starts reading at once;
#: the next ones double up to CHUNK_FLAGS_ONLY.
FIRST_CHUNK_FLAGS_ONLY = 1_000
READ_SIZE = 64 * 1024
#: Messages up to this size are read whole, several in one worker-thread call, and their
#: responses written together; bigger ones are streamed from their file.
SMALL_MESSAGE = 256 * 1024
#: The most message bytes read into memory at once for one batch.
BATCH_BYTES = 4 * 1024 * 1024
#: Rendered responses are written once this much has been gathered.
WRITE_SIZE = 256 * 1024


def file_length(record: Any, header_only: bool) -> int:
    """How many bytes of a message's file a FETCH reads: its top-level header when that is
    all the items need and its size is indexed, else the whole message."""
    size = max(0, int(record.size))
    header_size = int(record.header_size or 0)
    if header_only and 0 < header_size <= size:
        return header_size
    return size


def chunk_bounds(total: int, first: int, step: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive chunks covering ``range(total)``: the first of *first*
    items, each next one twice as big, up to *step* (the client starts parsing at once and
    the server keeps ahead of it)."""
    start, size = 0, first
    while start < total:
        yield start, min(total, start + size)
        start, size = start + size, min(step, size * 2)


def in_memory_batches(
    records: list[tuple[Any, int]], needs_file: bool, header_only: bool = False
) -> Iterator[list[tuple[Any, int]]]:
    """Split (record, seq) pairs into batches read and answered together: consecutive
    messages whose needed bytes (:func:`file_length`) are small, up to :data:`BATCH_BYTES`
    in all; each big one alone.  Without files every batch is small in memory, so all go
    together."""
    if not needs_file:
        if records:
            yield records
        return
    batch: list[tuple[Any, int]] = []
    total = 0
    for pair in records:
        size = file_length(pair[0], header_only)
        if size > SMALL_MESSAGE or total + size > BATCH_BYTES:
            if batch:
                yield batch
            batch, total = [], 0
            if size > SMALL_MESSAGE:
                yield [pair]
                continue
        batch.append(pair)
        total += size
    if batch:
        yield batch


def file_bytes(data: bytes, offset: int, length: int) -> bytes:
    """*length* bytes of a message's *data* from *offset*, padded if the file turned out
    shorter than indexed (the literal's length is already decided)."""
    piece = data[offset : offset + length]
    if len(piece) < length:
        log.error("imap FETCH: message file shorter than indexed")
        piece += b" " * (length - len(piece))
    return piece


@implementer(IPushProducer)
class FlowControl:
    """Registered with the transport during a FETCH: tells when to stop writing."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiters: list[Deferred[None]] = []

    def pauseProducing(self) -> None:
        """The transport's buffer is full."""
        self.paused = True

    def resumeProducing(self) -> None:
        """The transport drained its buffer."""
        self.paused = False
        self._wake()

    def stopProducing(self) -> None:
        """The connection is gone."""
        self.stopped = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def ready(self) -> Deferred[None]:
        """Fires when writing may go on."""
        if not self.paused or self.stopped:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter


class FetchCommands(SessionAPI):
    """Mixed into :class:`~a3mail.imap.server.IMAPServer`."""

    async def cmd_fetch(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """FETCH set items [(CHANGEDSINCE n)]."""
        return await self._fetch(args, False)

    async def cmd_uid_fetch(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """UID FETCH set items [(CHANGEDSINCE n [VANISHED])]."""
        return await self._fetch(args, True)

    async def _fetch(self, args: list[Token], uid_mode: bool) -> bytes:
        if len(args) < 2 or len(args) > 3:
            raise ImapSyntaxError("FETCH takes a set and items")
        changed_since: int | None = None
        vanished = False
        if len(args) == 3:
            changed_since, vanished = parse_fetch_modifiers(args[2])
            if vanished and not (uid_mode and self.qresync):
                raise ImapSyntaxError("VANISHED needs UID FETCH and QRESYNC enabled")
        spec = parse_fetch_items([args[1]])
        uids = self.message_uids(args[0], uid_mode)
        if spec.wants_modseq or changed_since is not None:
            self.condstore = True
        view = self.view()
        if vanished:  # RFC 7162 3.2.6: the set's UIDs expunged since, before the FETCHes
            assert changed_since is not None
            known: Ranges = (
                list(number_ranges(self.saved_uids))
                if is_saved_result(args[0])
                else parse_sequence_set(args[0])
            )
            gone = await expunged_in(self.factory.store, view, changed_since, known)
            self.send(vanished_line(gone, earlier=True))
        seen_now: set[int] = set()
        if spec.sets_seen and not view.readonly:
            unseen = [u for u in uids if not view.is_seen(u)]
            if unseen:
                changes, _ = await self.factory.store.messages.store_flags(
                    self.account.id, view.mailbox.id, unseen, "+", ["\\Seen"]
                )
                for change in changes:
                    view.note_own_modseq(change.modseq)
                    view.set_flags(change.uid, change.flags, change.keywords, change.modseq)
                    seen_now.add(change.uid)
        flow = FlowControl()
        self.transport.registerProducer(flow, True)
        failures = 0
        flags_only, needs_file, header_only = spec.flags_only, spec.needs_file, spec.header_only
        step = CHUNK_FLAGS_ONLY if flags_only else CHUNK_UIDS
        first = FIRST_CHUNK_FLAGS_ONLY if flags_only else CHUNK_UIDS
        try:
            for start, end in chunk_bounds(len(uids), first, step):
                chunk = uids[start:end]
                if flags_only and not seen_now:
                    await self._fetch_flags_only(spec, chunk, uid_mode, changed_since, flow)
                    if flow.stopped or self._closed:
                        return b"NO Connection closed"
                    continue
                records = [
                    (record, seq)
                    for record in await self._records(chunk, spec)
                    if changed_since is None or record.modseq > changed_since
                    if (seq := view.seq_of(record.uid)) is not None
                ]
                for batch in in_memory_batches(records, needs_file, header_only):
                    if (
                        needs_file
                        and len(batch) == 1
                        and file_length(batch[0][0], header_only) > SMALL_MESSAGE
                    ):
                        record, seq = batch[0]  # big: streamed from its file
                        ok = await self._fetch_one(spec, record, seq, uid_mode, seen_now, flow)
                        failures += 0 if ok else 1
                    else:
                        failures += await self._fetch_batch(
                            spec, batch, uid_mode, seen_now, flow, needs_file, header_only
                        )
                    if flow.stopped or self._closed:
                        return b"NO Connection closed"
        finally:
            self.transport.unregisterProducer()
        if failures:
            return b"NO [SERVERBUG] Some messages could not be fetched"
        return b"OK FETCH completed"

    async def _fetch_flags_only(
        self,
        spec: Any,
        uids: Sequence[int],
        uid_mode: bool,
        changed_since: int | None,
        flow: FlowControl,
    ) -> None:
        """FETCH of only FLAGS/UID/MODSEQ, answered from the session's view (brought up to
        date with the changes noted so far) in one write per chunk: the ``UID FETCH 1:*
        (FLAGS)`` every client sends at start-up costs no database work."""
        names = [item.name for item in spec.items]
        if uid_mode and "UID" not in names:
            names.insert(0, "UID")
        if self.condstore and "MODSEQ" not in names:
            names.append("MODSEQ")
        view = self.view()
        if view.has_pending:
            self.send(b"".join(await view.updates(allow_expunge=False, condstore=self.condstore)))
        self.send(view.flags_fetch(uids, names, changed_since))
        self.resetTimeout()
        await flow.ready()

    async def _records(self, uids: Sequence[int], spec: Any) -> list[Any]:
        """Index records of a chunk: just the flags when nothing else is asked."""
        search = self.factory.store.search
        mailbox_id = self.view().mailbox.id
        records: list[Any]
        if spec.flags_only:
            records = await search.fetch_flags(self.account.id, mailbox_id, list(uids))
        else:
            records = await search.fetch_info(
                self.account.id, mailbox_id, list(uids), spec.needs_parsed
            )
        return records

    async def _fetch_one(
        self,
        spec: Any,
        record: Any,
        seq: int,
        uid_mode: bool,
        seen_now: set[int],
        flow: FlowControl,
    ) -> bool:
        """Render and send one message's response; False if it could not be sent."""
        file: BinaryIO | None = None
        if spec.needs_file:
            try:
                file = self.factory.store.messages.open(record)
            except OSError:
                log.failure("imap FETCH cannot open the file of uid {uid}", uid=record.uid)
                return False
        try:
            pieces = render_fetch(
                spec,
                record,
                seq,
                file,
                with_uid=uid_mode,
                with_modseq=self.condstore,
                include_flags=record.uid in seen_now,
            )
            for piece in pieces:
                if isinstance(piece, FileRange):
                    assert file is not None
                    await self._stream(file, piece.offset, piece.length, flow)
                else:
                    self.send(piece)
                await flow.ready()
        finally:
            if file is not None:
                file.close()
        return True

    async def _fetch_batch(
        self,
        spec: Any,
        batch: list[tuple[Any, int]],
        uid_mode: bool,
        seen_now: set[int],
        flow: FlowControl,
        needs_file: bool,
        header_only: bool,
    ) -> int:
        """Responses for small messages, their files read in one worker-thread call and the
        output written in a few large writes (*needs_file* and *header_only* are *spec*'s).
        Returns how many could not be sent."""
        contents: list[bytes | None] = [None] * len(batch)
        if needs_file:
            records = [r for r, _ in batch]
            lengths = None
            if header_only:  # a header sync: only the headers are read
                lengths = [file_length(r, True) for r in records]
            contents = await self.factory.store.messages.read_many(records, lengths)
        failures = 0
        out: list[bytes] = []
        size = 0
        fast = compile_fetch(spec, with_uid=uid_mode, with_modseq=self.condstore)
        for (record, seq), data in zip(batch, contents, strict=True):
            if needs_file and data is None:
                log.error("imap FETCH cannot read the file of uid {uid}", uid=record.uid)
                failures += 1
                continue
            response = None
            if fast is not None and record.uid not in seen_now:
                response = fast(record, seq, data)
            if response is not None:
                out.append(response)
                size += len(response)
            else:
                size += self._render_into(out, spec, record, seq, data, uid_mode, seen_now)
            if size >= WRITE_SIZE:
                self.send(b"".join(out))
                out.clear()
                size = 0
                self.resetTimeout()
                await flow.ready()
                if flow.stopped or self._closed:
                    return failures
        if out:
            self.send(b"".join(out))
            self.resetTimeout()
            await flow.ready()
        return failures

    def _render_into(
        self,
        out: list[bytes],
        spec: Any,
        record: Any,
        seq: int,
        data: bytes | None,
        uid_mode: bool,
        seen_now: set[int],
    ) -> int:
        """Append one message's response by ``render_fetch``; returns its length."""
        pieces = render_fetch(
            spec,
            record,
            seq,
            io.BytesIO(data) if data is not None else None,
            with_uid=uid_mode,
            with_modseq=self.condstore,
            include_flags=record.uid in seen_now,
        )
        size = 0
        for piece in pieces:
            if isinstance(piece, FileRange):
                assert data is not None
                piece = file_bytes(data, piece.offset, piece.length)
            out.append(piece)
            size += len(piece)
        return size

    async def _stream(self, file: BinaryIO, offset: int, length: int, flow: Any) -> None:
        """Send *length* bytes of *file* from *offset*, pausing while the client is slow.
        A file that turns out shorter is padded (the literal's length is already sent)."""
        file.seek(offset)
        left = length
        while left > 0 and not flow.stopped:
            chunk = file.read(min(READ_SIZE, left))
            if not chunk:
                log.error("imap FETCH: message file shorter than indexed")
                chunk = b" " * min(READ_SIZE, left)
            self.send(chunk)
            left -= len(chunk)
            self.resetTimeout()
            await flow.ready()
