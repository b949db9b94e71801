"""Commands on the selected mailbox: SELECT, EXAMINE, CHECK, CLOSE, UNSELECT, EXPUNGE,
UID EXPUNGE, STORE, COPY, MOVE (and their UID forms), SEARCH, SORT, and IDLE.  FETCH is in
:mod:`a3mail.imap.commands_fetch`."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from a3mail.imap import framing, searchspec, threadspec
from a3mail.imap.commands_fetch import FetchCommands
from a3mail.imap.esearch import esearch_line, saved_part, split_return_options
from a3mail.imap.qresync import SelectParams, parse_select_params, resync
from a3mail.imap.selected import SelectedMailbox
from a3mail.imap.sortspec import parse_sort_criteria, sort_records
from a3mail.imap.states import State
from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, Token
from a3mail.imap.wire import (
    atom_upper,
    decode_mailbox,
    flag_list,
    flags_argument,
    format_sequence,
    is_saved_result,
    number,
    parse_sequence_set,
    resolve_sequence,
    resolve_uids,
)
from a3mail.logs import get_logger
from a3mail.store.records import NotFound

log = get_logger(__name__)

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class SelectedCommands(FetchCommands):
    """Mixed into :class:`~a3mail.imap.server.IMAPServer`."""

    # -- helpers ------------------------------------------------------------------------

    def view(self) -> SelectedMailbox:
        """The selected mailbox (the command table guarantees there is one)."""
        assert self.selected is not None
        return self.selected

    def message_uids(self, token: Token, uid_mode: bool) -> list[int]:
        """The UIDs a sequence set (or UID set) names, ascending; ``$`` names the saved
        search result's messages that are still in the mailbox (RFC 5182)."""
        view = self.view()
        if is_saved_result(token):
            return [uid for uid in self.saved_uids if uid in view]
        ranges = parse_sequence_set(token)
        if uid_mode:
            return resolve_uids(ranges, view.uids)
        seqs = resolve_sequence(ranges, view.exists)
        if seqs and seqs[-1] - seqs[0] + 1 == len(seqs):  # contiguous: one slice
            return view.uids[seqs[0] - 1 : seqs[-1]].tolist()
        return [view.uids[seq - 1] for seq in seqs]

    def numbers_for(self, uids: list[int], uid_mode: bool) -> bytes:
        """UIDs as a set in the client's numbering (UIDs, or sequence numbers)."""
        if uid_mode:
            return format_sequence(uids)
        view = self.view()
        return format_sequence(sorted(s for s in map(view.seq_of, uids) if s is not None))

    # -- SELECT / EXAMINE ---------------------------------------------------------------

    async def cmd_select(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """SELECT name [(CONDSTORE | QRESYNC (...))]."""
        return await self._select(args, readonly=False)

    async def cmd_examine(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """EXAMINE name [(CONDSTORE | QRESYNC (...))]."""
        return await self._select(args, readonly=True)

    async def _select(self, args: list[Token], readonly: bool) -> bytes:
        if not args or len(args) > 2:
            raise ImapSyntaxError("Expected a mailbox name")
        params = SelectParams()
        if len(args) == 2:
            params = parse_select_params(args[1], self.qresync)
            self.condstore = self.condstore or params.condstore
        if self.selected is not None:  # RFC 7162 3.2.11: ends the old mailbox's responses
            self.send(b"* OK [CLOSED] Previous mailbox closed\r\n")
        self.deselect()
        name = decode_mailbox(args[0])
        mailbox = await self.factory.store.mailboxes.get(self.account.id, name)
        view = SelectedMailbox(
            self.factory.store, mailbox, readonly, getattr(self.factory, "snapshots", None)
        )
        try:
            await view.load()
        except BaseException:
            view.close()
            raise
        if self.phase is State.LOGOUT:
            view.close()
            return b"NO Session ended"
        self.selected = view
        self.phase = State.SELECTED
        flags = list(SYSTEM_FLAGS) + view.keywords()
        lines = [
            b"* FLAGS %s\r\n" % flag_list(flags),
            b"* OK [PERMANENTFLAGS %s] Flags permitted\r\n"
            % (flag_list([]) if readonly else flag_list([*flags, "\\*"])),
            b"* %d EXISTS\r\n" % view.exists,
            b"* 0 RECENT\r\n",
        ]
        unseen = view.first_unseen()
        if unseen is not None:
            lines.append(b"* OK [UNSEEN %d] First unseen\r\n" % unseen)
        lines += [
            b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % mailbox.uidvalidity,
            b"* OK [UIDNEXT %d] Predicted next UID\r\n" % mailbox.uidnext,
            b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % mailbox.highestmodseq,
        ]
        if params.qresync is not None:
            lines.append(await resync(self.factory.store, view, params.qresync))
        self.send(b"".join(lines))
        mode = b"READ-ONLY" if readonly else b"READ-WRITE"
        return b"OK [%s] %s completed" % (mode, b"EXAMINE" if readonly else b"SELECT")

    # -- CHECK / CLOSE / UNSELECT / EXPUNGE -------------------------------------------

    async def cmd_check(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """CHECK: everything is always durable; like NOOP."""
        await self.refresh_selected()
        return b"OK CHECK completed"

    async def cmd_close(self, tag: bytes, args: list[Token], command: framing.Command) -> None:
        """CLOSE: expunge silently (read-write only), then leave the mailbox."""
        view = self.view()
        if not view.readonly:
            await self.factory.store.messages.expunge(self.account.id, view.mailbox.id)
        self.deselect()
        self.send(tag + b" OK CLOSE completed\r\n")

    async def cmd_unselect(self, tag: bytes, args: list[Token], command: framing.Command) -> None:
        """UNSELECT (RFC 3691): leave the mailbox without expunging."""
        self.deselect()
        self.send(tag + b" OK UNSELECT completed\r\n")

    async def cmd_expunge(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """EXPUNGE."""
        return await self._expunge(None)

    async def cmd_uid_expunge(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """UID EXPUNGE uid-set (UIDPLUS)."""
        if len(args) != 1:
            raise ImapSyntaxError("UID EXPUNGE takes a UID set")
        return await self._expunge(self.message_uids(args[0], True))

    async def _expunge(self, uids: list[int] | None) -> bytes:
        view = self.view()
        if view.readonly:
            return b"NO [READ-ONLY] Mailbox is read-only"
        if uids is not None and not uids:
            return b"OK EXPUNGE completed"
        removed = await self.factory.store.messages.expunge(self.account.id, view.mailbox.id, uids)
        self.send_expunges(removed)
        return b"OK EXPUNGE completed"

    def send_expunges(self, uids: list[int]) -> None:
        """``* n EXPUNGE`` (or ``* VANISHED`` with QRESYNC) for messages this session
        removed."""
        self.send(b"".join(self.view().expunge_lines(uids, self.qresync)))

    # -- STORE --------------------------------------------------------------------------

    async def cmd_store(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags."""
        return await self._store(args, False)

    async def cmd_uid_store(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """UID STORE."""
        return await self._store(args, True)

    async def _store(self, args: list[Token], uid_mode: bool) -> bytes:
        if len(args) < 3:
            raise ImapSyntaxError("STORE takes a set, an item and flags")
        rest = list(args[1:])
        unchanged_since: int | None = None
        first = rest[0]
        if isinstance(first, ParenList):
            rest.pop(0)
            modifiers = first.items
            if len(modifiers) != 2 or atom_upper(modifiers[0]) != b"UNCHANGEDSINCE":
                raise ImapSyntaxError("Unknown STORE modifier")
            unchanged_since = number(modifiers[1])
            self.condstore = True
        if len(rest) < 2:
            raise ImapSyntaxError("STORE takes an item and flags")
        item = atom_upper(rest[0])
        silent = item.endswith(b".SILENT")
        base = item[: -len(b".SILENT")] if silent else item
        modes = {b"FLAGS": "=", b"+FLAGS": "+", b"-FLAGS": "-"}
        if base not in modes:
            raise ImapSyntaxError("Unknown STORE item")
        flags = flags_argument(rest[1:])
        uids = self.message_uids(args[0], uid_mode)
        view = self.view()
        if view.readonly:
            return b"NO [READ-ONLY] Mailbox is read-only"
        if not uids:
            return b"OK STORE completed"
        changes, failed = await self.factory.store.messages.store_flags(
            self.account.id,
            view.mailbox.id,
            uids,
            modes[base],
            flags,
            unchanged_since=unchanged_since,
        )
        changed = set()
        for change in changes:
            view.note_own_modseq(change.modseq)
            view.set_flags(change.uid, change.flags, change.keywords, change.modseq)
            changed.add(change.uid)
        refused = set(failed)
        lines = []
        for uid in uids:
            seq = view.seq_of(uid)
            if seq is None or uid in refused:
                continue
            if not silent:
                lines.append(view.flags_line(seq, uid, self.condstore))
            elif self.condstore and uid in changed:
                modseq = (view.state(uid) or (0, (), 0))[2]
                lines.append(b"* %d FETCH (UID %d MODSEQ (%d))\r\n" % (seq, uid, modseq))
        self.send(b"".join(lines))
        if failed:
            return b"OK [MODIFIED %s] Conditional STORE failed" % self.numbers_for(failed, uid_mode)
        return b"OK STORE completed"

    # -- COPY / MOVE --------------------------------------------------------------------

    async def cmd_copy(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """COPY set mailbox -> ``OK [COPYUID ...]``."""
        return await self._copy(args, uid_mode=False, move=False)

    async def cmd_uid_copy(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """UID COPY."""
        return await self._copy(args, uid_mode=True, move=False)

    async def cmd_move(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """MOVE set mailbox (RFC 6851)."""
        return await self._copy(args, uid_mode=False, move=True)

    async def cmd_uid_move(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """UID MOVE."""
        return await self._copy(args, uid_mode=True, move=True)

    async def _copy(self, args: list[Token], *, uid_mode: bool, move: bool) -> bytes:
        if len(args) != 2:
            raise ImapSyntaxError("Expected a set and a mailbox name")
        uids = self.message_uids(args[0], uid_mode)
        dest = decode_mailbox(args[1])
        view = self.view()
        name = b"MOVE" if move else b"COPY"
        if move and view.readonly:
            return b"NO [READ-ONLY] Mailbox is read-only"
        if not uids:
            return b"OK %s completed" % name
        try:
            result = await self.factory.store.messages.copy(
                self.account.id, view.mailbox.id, uids, dest, move=move
            )
        except NotFound:
            return b"NO [TRYCREATE] No such mailbox"
        if not result.source_uids:
            return b"OK %s completed" % name
        copyuid = b"COPYUID %d %s %s" % (
            result.uidvalidity,
            format_sequence(result.source_uids),
            format_sequence(result.dest_uids),
        )
        if not move:
            return b"OK [%s] COPY completed" % copyuid
        self.send(b"* OK [%s] Moved\r\n" % copyuid)
        self.send_expunges(list(result.source_uids))
        return b"OK MOVE completed"

    # -- SEARCH -------------------------------------------------------------------------

    async def cmd_search(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """SEARCH [RETURN (..)] keys: ``* SEARCH`` with sequence numbers (always sent, even
        empty), or ``* ESEARCH`` with RETURN options (RFC 4731)."""
        return await self._search(tag, args, False)

    async def cmd_uid_search(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """UID SEARCH [RETURN (..)] keys."""
        return await self._search(tag, args, True)

    async def _search(self, tag: bytes, args: list[Token], uid_mode: bool) -> bytes:
        options, args = split_return_options(args)
        saving = options is not None and b"SAVE" in options
        try:
            searched = await self._run_search(args)  # ($ in it is the previous result)
        finally:
            if saving:  # RFC 5182 2.1: a SEARCH that fails leaves $ empty
                self.saved_uids = []
        if searched is None:
            return b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
        query, result, uids = searched
        if saving:
            assert options is not None
            self.saved_uids = saved_part(options, uids)
            options = options - {b"SAVE"}
            if not options:  # SAVE alone: no ESEARCH response
                return b"OK SEARCH completed"
        number = self._numbering(uid_mode)
        found = [number(uid) for uid in uids]
        modseq = None
        if getattr(query, "uses_modseq", False) and found and result.highest_modseq is not None:
            modseq = result.highest_modseq
            self.condstore = True
        if options is not None:
            self.send(esearch_line(tag, uid_mode, options, found, modseq))
            return b"OK SEARCH completed"
        line = b"* SEARCH" + b"".join(b" %d" % n for n in found)
        if modseq is not None:
            line += b" (MODSEQ %d)" % modseq
        self.send(line + b"\r\n")
        return b"OK SEARCH completed"

    # -- SORT (RFC 5256) ----------------------------------------------------------------

    async def cmd_sort(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """SORT (criteria) charset keys: ``* SORT`` with sequence numbers in sort order."""
        return await self._sort(args, False)

    async def cmd_uid_sort(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """UID SORT (criteria) charset keys."""
        return await self._sort(args, True)

    async def _sort(self, args: list[Token], uid_mode: bool) -> bytes:
        if len(args) < 3:
            raise ImapSyntaxError("SORT takes criteria, a charset and search keys")
        criteria = parse_sort_criteria(args[0])
        found = await self._matches(args[1:])
        if found is None:
            return b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
        store, view = self.factory.store, self.view()
        records = await store.search.sort_keys(self.account.id, view.mailbox.id, found)
        number = self._numbering(uid_mode)
        ordered = sort_records(records, criteria)
        self.send(b"* SORT" + b"".join(b" %d" % number(u) for u in ordered) + b"\r\n")
        return b"OK SORT completed"

    # -- THREAD (RFC 5256) --------------------------------------------------------------

    async def cmd_thread(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """THREAD algorithm charset keys: ``* THREAD`` with sequence numbers."""
        return await self._thread(args, False)

    async def cmd_uid_thread(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """UID THREAD algorithm charset keys."""
        return await self._thread(args, True)

    async def _thread(self, args: list[Token], uid_mode: bool) -> bytes:
        if len(args) < 3:
            raise ImapSyntaxError("THREAD takes an algorithm, a charset and search keys")
        algorithm = threadspec.parse_algorithm(args[0])
        found = await self._matches(args[1:])
        if found is None:
            return b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
        store, view = self.factory.store, self.view()
        records = await store.search.thread_keys(self.account.id, view.mailbox.id, found)
        roots = threadspec.thread(records, algorithm)
        data = threadspec.render(roots, self._numbering(uid_mode))
        self.send(b"* THREAD" + (b" " + data if data else b"") + b"\r\n")
        return b"OK THREAD completed"

    async def _matches(self, args: list[Token]) -> list[int] | None:
        """The UIDs (in the view) matching ``charset keys...``; None for another charset."""
        # the charset is not optional here, otherwise the keys are SEARCH's
        searched = await self._run_search([Atom(b"CHARSET"), *args])
        return None if searched is None else searched[2]

    async def _run_search(self, args: list[Token]) -> tuple[Any, Any, list[int]] | None:
        """SEARCH's keys evaluated over the selected mailbox: the query, the store's result
        and the matching UIDs still in the view; None for an unsupported charset."""
        try:
            query = searchspec.parse_search(args)
        except searchspec.BadCharset:
            return None
        view = self.view()
        query = query.resolve(view.uids, self.saved_uids)
        result = await self.factory.store.search.search(self.account.id, view.mailbox.id, query)
        return query, result, [u for u in result.uids if u in view]

    def _numbering(self, uid_mode: bool) -> Any:
        """UID -> the number the client sees (the UID, or its sequence number)."""
        if uid_mode:
            return int
        view = self.view()
        return lambda uid: view.seq_of(uid) or 0

    # -- IDLE ---------------------------------------------------------------------------

    async def cmd_idle(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """IDLE (RFC 2177): changes are pushed at once; only ``DONE`` ends it."""
        if args:
            raise ImapSyntaxError("IDLE takes no arguments")
        self.send(b"+ idling\r\n")
        view = self.selected
        flushing: list[Deferred[Any]] = []

        async def flush() -> None:
            while view is not None and view.has_pending and not self._closed:
                await self.send_updates()

        def flush_soon() -> None:
            if flushing or self.selected is not view:
                return
            done = Deferred.fromCoroutine(flush())
            flushing.append(done)
            done.addErrback(lambda f: log.failure("imap IDLE update failed", f))
            done.addBoth(lambda _: flushing.clear())

        if view is not None:
            view.on_change = flush_soon
            await self.refresh_selected()
            flush_soon()
        try:
            while True:
                line = await self.read_line()
                if line is None:
                    return b"NO Connection closed"
                if isinstance(line, bytes) and line.strip().upper() == b"DONE":
                    break
                self.send(b"* BAD Expected DONE\r\n")
        finally:
            if view is not None:
                view.on_change = None
        while flushing:
            await flushing[0]
        return b"OK IDLE terminated"
