"""Commands on mailboxes by name: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
(with LIST-EXTENDED, SPECIAL-USE, CHILDREN, LIST-STATUS), LSUB, STATUS and APPEND."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from a3mail.imap import framing
from a3mail.imap.session import SessionAPI
from a3mail.imap.tokens import Atom, ImapSyntaxError, ParenList, String, Token
from a3mail.imap.wire import (
    atom_upper,
    decode_mailbox,
    encode_mailbox,
    flags_argument,
    format_sequence,
    token_bytes,
)
from a3mail.smtp.delivery import parse_json
from a3mail.store.mailbox_state import MessageState
from a3mail.store.messages import AppendItem
from a3mail.store.names import INBOX
from a3mail.store.records import Mailbox, NotFound, split_flags

STATUS_ITEMS = (
    b"MESSAGES",
    b"RECENT",
    b"UIDNEXT",
    b"UIDVALIDITY",
    b"UNSEEN",
    b"HIGHESTMODSEQ",
    b"SIZE",
)
MAX_PATTERN = 1024
#: Messages one APPEND may carry (MULTIAPPEND); each is also bounded by APPENDLIMIT.
MAX_MULTIAPPEND = 1000
_DATE = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})$")


def status_values(mailbox: Mailbox, items: Sequence[bytes]) -> bytes:
    """``MESSAGES 3 UNSEEN 1 ...`` for the requested items."""
    values = {
        b"MESSAGES": mailbox.message_count,
        b"RECENT": 0,
        b"UIDNEXT": mailbox.uidnext,
        b"UIDVALIDITY": mailbox.uidvalidity,
        b"UNSEEN": mailbox.unseen_count,
        b"HIGHESTMODSEQ": mailbox.highestmodseq,
        b"SIZE": mailbox.total_bytes,
    }
    return b" ".join(b"%s %d" % (item, values[item]) for item in items)


def status_items(token: Token) -> list[bytes]:
    """The item names of a STATUS list."""
    if not isinstance(token, ParenList) or not token.items:
        raise ImapSyntaxError("Expected a list of status items")
    items = [atom_upper(t) for t in token.items]
    if any(item not in STATUS_ITEMS for item in items):
        raise ImapSyntaxError("Unknown status item")
    return items


class ListPattern:
    """A LIST pattern: ``*`` matches anything, ``%`` anything but the separator.  Matched
    by dynamic programming (linear in pattern x name), never by backtracking, so a hostile
    pattern like ``*a*a*a*a*b`` costs no more than a plain one."""

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN:
            raise ImapSyntaxError("Pattern too long")
        parts = pattern.split("/")
        if parts[0].upper() == INBOX:
            parts[0] = INBOX
        self.pattern = re.sub(r"\*[*%]*|%+", lambda m: m.group(0)[0], "/".join(parts))

    def matches(self, name: str) -> bool:
        """Whether *name* matches the whole pattern."""
        pattern = self.pattern
        # reachable[j]: the first i pattern characters can match name[:j]
        reachable = [True] + [False] * len(name)
        for char in pattern:
            if char == "*":
                for j in range(1, len(name) + 1):
                    reachable[j] = reachable[j] or reachable[j - 1]
            elif char == "%":
                for j in range(1, len(name) + 1):
                    reachable[j] = reachable[j] or (reachable[j - 1] and name[j - 1] != "/")
            else:
                reachable = [False] + [
                    reachable[j - 1] and name[j - 1] == char for j in range(1, len(name) + 1)
                ]
            if not any(reachable):
                return False
        return reachable[-1]


def parse_date(token: Token) -> datetime:
    """An APPEND date-time (``"17-Jul-1996 02:44:25 -0700"``)."""
    match = _DATE.match(token_bytes(token)) if isinstance(token, String) else None
    if match is None:
        raise ImapSyntaxError("Invalid date-time")
    try:
        text = "{}-{}-{} {}:{}:{} {}".format(*tuple(g.decode("ascii") for g in match.groups()))
        return datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        raise ImapSyntaxError("Invalid date-time") from None


class MailboxCommands(SessionAPI):
    """Mixed into :class:`~a3mail.imap.server.IMAPServer`."""

    async def cmd_create(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """CREATE name (a trailing separator is ignored; missing parents are made)."""
        if not args or len(args) > 2:
            raise ImapSyntaxError("CREATE takes a mailbox name")
        raw = token_bytes(args[0]).rstrip(b"/")
        name = decode_mailbox(String(raw))
        if name == INBOX:
            return b"NO [ALREADYEXISTS] INBOX exists"
        if "*" in name or "%" in name:
            return b"NO [CANNOT] Wildcards are not allowed in mailbox names"
        await self.factory.store.mailboxes.create(self.account.id, name)
        return b"OK CREATE completed"

    async def cmd_delete(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """DELETE name."""
        if len(args) != 1:
            raise ImapSyntaxError("DELETE takes a mailbox name")
        name = decode_mailbox(args[0])
        if self.selected is not None and self.selected.mailbox.name == name:
            self.deselect()
        await self.factory.store.mailboxes.delete(self.account.id, name)
        return b"OK DELETE completed"

    async def cmd_rename(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """RENAME old new (renaming INBOX moves its messages, RFC 3501)."""
        if len(args) != 2:
            raise ImapSyntaxError("RENAME takes two mailbox names")
        old, new = decode_mailbox(args[0]), decode_mailbox(args[1])
        await self.factory.store.mailboxes.rename(self.account.id, old, new)
        return b"OK RENAME completed"

    async def cmd_subscribe(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """SUBSCRIBE name."""
        return await self._subscription(args, True)

    async def cmd_unsubscribe(
        self, tag: bytes, args: list[Token], command: framing.Command
    ) -> bytes:
        """UNSUBSCRIBE name."""
        return await self._subscription(args, False)

    async def _subscription(self, args: list[Token], on: bool) -> bytes:
        if len(args) != 1:
            raise ImapSyntaxError("Expected a mailbox name")
        name = decode_mailbox(args[0])
        await self.factory.store.mailboxes.subscribe(self.account.id, name, on)
        return b"OK %s completed" % (b"SUBSCRIBE" if on else b"UNSUBSCRIBE")

    # -- LIST / LSUB -------------------------------------------------------------------

    async def cmd_list(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """LIST [(selection)] reference pattern(s) [RETURN (options)]."""
        args = list(args)
        selection: set[bytes] = set()
        first = args[0] if args else None
        if isinstance(first, ParenList):
            args.pop(0)
            selection = {atom_upper(t) for t in first.items}
            if selection - {b"SUBSCRIBED", b"REMOTE", b"RECURSIVEMATCH", b"SPECIAL-USE"}:
                raise ImapSyntaxError("Unknown LIST selection option")
            if selection == {b"RECURSIVEMATCH"}:
                raise ImapSyntaxError("RECURSIVEMATCH needs another selection option")
        if len(args) < 2:
            raise ImapSyntaxError("LIST takes a reference and a pattern")
        reference = _text(args[0])
        if isinstance(args[1], ParenList):
            patterns = [_text(t) for t in args[1].items]
        else:
            patterns = [_text(args[1])]
        returns, status = _return_options(args[2:])
        extended = bool(selection or returns or status or isinstance(args[1], ParenList))
        if patterns == [""] and not extended:
            self.send(b'* LIST (\\Noselect) "/" ""\r\n')
            return b"OK LIST completed"
        await self._list(
            b"LIST",
            [reference + p for p in patterns],
            subscribed_only=b"SUBSCRIBED" in selection,
            special_only=b"SPECIAL-USE" in selection,
            show_subscribed=b"SUBSCRIBED" in selection or b"SUBSCRIBED" in returns,
            show_special=b"SPECIAL-USE" in returns or not extended or b"SPECIAL-USE" in selection,
            status=status,
        )
        return b"OK LIST completed"

    async def cmd_lsub(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """LSUB reference pattern."""
        if len(args) != 2:
            raise ImapSyntaxError("LSUB takes a reference and a pattern")
        pattern = _text(args[0]) + _text(args[1])
        await self._list(b"LSUB", [pattern], subscribed_only=True, children=False)
        return b"OK LSUB completed"

    async def _list(
        self,
        kind: bytes,
        patterns: list[str],
        *,
        subscribed_only: bool = False,
        special_only: bool = False,
        show_subscribed: bool = False,
        show_special: bool = True,
        children: bool = True,
        status: list[bytes] | None = None,
    ) -> None:
        mailboxes = await self.factory.store.mailboxes.list(self.account.id)
        names = {m.name for m in mailboxes}
        matchers = [ListPattern(p) for p in patterns]
        lines = []
        for mailbox in mailboxes:
            if not any(m.matches(mailbox.name) for m in matchers):
                continue
            if (subscribed_only and not mailbox.subscribed) or (
                special_only and not mailbox.special_use
            ):
                continue
            attributes = []
            if children:
                has = any(n.startswith(mailbox.name + "/") for n in names)
                attributes.append("\\HasChildren" if has else "\\HasNoChildren")
            if show_subscribed and mailbox.subscribed:
                attributes.append("\\Subscribed")
            if show_special and mailbox.special_use:
                attributes.append(mailbox.special_use)
            lines.append(
                b'* %s (%s) "/" %s\r\n'
                % (kind, " ".join(attributes).encode(), encode_mailbox(mailbox.name))
            )
            if status:
                lines.append(
                    b"* STATUS %s (%s)\r\n"
                    % (encode_mailbox(mailbox.name), status_values(mailbox, status))
                )
        self.send(b"".join(lines))

    # -- STATUS ------------------------------------------------------------------------

    async def cmd_status(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """STATUS name (items): from the mailbox's counters, no row counting."""
        if len(args) != 2:
            raise ImapSyntaxError("STATUS takes a mailbox name and a list")
        name = decode_mailbox(args[0])
        items = status_items(args[1])
        mailbox = await self.factory.store.mailboxes.get(self.account.id, name)
        self.send(
            b"* STATUS %s (%s)\r\n" % (encode_mailbox(mailbox.name), status_values(mailbox, items))
        )
        return b"OK STATUS completed"

    # -- APPEND ------------------------------------------------------------------------

    async def cmd_append(self, tag: bytes, args: list[Token], command: framing.Command) -> bytes:
        """APPEND name [(flags)] [date-time] literal ... -> ``OK [APPENDUID v uid-set]``;
        several messages (MULTIAPPEND, RFC 3502) are appended all or none."""
        name, messages = parse_append(args)
        store = self.factory.store
        blobs: list[Any] = []
        try:
            for message in messages:
                writer = command.take_spooled(message.literal_index)
                if writer is not None:
                    blobs.append(await store.finish_writer(writer))
                elif not message.data:
                    raise _EmptyMessage
                else:  # in memory: written, parsed and linked in one worker-thread call
                    blobs.append(message.data)
            added = await self._append(name, messages, blobs)
        except _EmptyMessage:
            _remove_quietly(store, blobs)
            return b"NO Empty message"
        except NotFound:
            _remove_quietly(store, blobs)
            return b"NO [TRYCREATE] No such mailbox"
        except BaseException:
            _remove_quietly(store, blobs)
            raise
        mailbox, uids = added
        view = self.selected
        if view is not None and view.mailbox.id == mailbox.id:  # RFC 3501 6.3.11: EXISTS now
            for message, (uid, modseq) in zip(messages, uids, strict=True):
                bits, keywords = split_flags(message.flags)
                view.note_own_append(MessageState(uid, bits, keywords, modseq))
        uid_set = format_sequence([uid for uid, _ in uids])
        return b"OK [APPENDUID %d %s] APPEND completed" % (mailbox.uidvalidity, uid_set)

    async def _append(
        self, name: str, messages: list[AppendMessage], blobs: list[Any]
    ) -> tuple[Any, list[tuple[int, int]]]:
        store = self.factory.store
        if len(messages) == 1:  # one statement, committed by itself (no BEGIN/COMMIT)
            [message], [blob] = messages, blobs
            mailbox, uid = await store.messages.append(
                self.account.id,
                name,
                blob,
                flags=message.flags,
                internal_date=message.date,
                parse=parse_json,
            )
            return mailbox, [(uid, mailbox.highestmodseq)]
        items = [
            AppendItem(blob, tuple(m.flags), m.date)
            for m, blob in zip(messages, blobs, strict=True)
        ]
        return await store.messages.append_many(self.account.id, name, items, parse=parse_json)


class _EmptyMessage(Exception):
    """An APPEND message literal of zero bytes."""


@attrs.frozen
class AppendMessage:
    """One message of an APPEND: flags, date, the literal's bytes (empty when spooled)
    and which literal of the command it was."""

    flags: list[str]
    date: datetime | None
    data: bytes
    literal_index: int


def parse_append(args: list[Token]) -> tuple[str, list[AppendMessage]]:
    """``mailbox 1*([SP flag-list] [SP date-time] SP literal)`` (RFC 3502): the mailbox
    name and each message; ImapSyntaxError (BAD) for anything else."""
    if len(args) < 2:
        raise ImapSyntaxError("APPEND takes a mailbox, optional flags and date, a message")
    name = decode_mailbox(args[0])
    literals = 1 if isinstance(args[0], String) and args[0].literal else 0
    messages: list[AppendMessage] = []
    flags: list[str] | None = None
    date: datetime | None = None
    for token in args[1:]:
        if isinstance(token, String) and token.literal:
            messages.append(AppendMessage(flags or [], date, bytes(token.value), literals))
            literals += 1
            flags, date = None, None
        elif isinstance(token, ParenList) and flags is None and date is None:
            flags = flags_argument([token])
        elif isinstance(token, String) and date is None:
            date = parse_date(token)
        else:
            raise ImapSyntaxError("Invalid APPEND arguments")
    if not messages or flags is not None or date is not None:
        raise ImapSyntaxError("Each APPEND message must end with a literal")
    if len(messages) > MAX_MULTIAPPEND:
        raise ImapSyntaxError("Too many messages in one APPEND")
    return name, messages


def _remove_quietly(store: Any, blobs: list[Any]) -> None:
    for blob in blobs:
        if isinstance(blob, bytes):  # nothing was left on disk
            continue
        with contextlib.suppress(OSError):
            store.blobs.remove_incoming(blob.path)


def _text(token: Token) -> str:
    if isinstance(token, ParenList):
        raise ImapSyntaxError("Expected a string")
    raw = token.value
    try:
        return raw.decode("imap4-utf-7") if raw.isascii() else raw.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        raise ImapSyntaxError("Invalid mailbox name encoding") from None


def _return_options(rest: list[Token]) -> tuple[set[bytes], list[bytes] | None]:
    if not rest:
        return set(), None
    if (
        len(rest) != 2
        or not isinstance(rest[0], Atom)
        or rest[0].value.upper() != b"RETURN"
        or not isinstance(rest[1], ParenList)
    ):
        raise ImapSyntaxError("Invalid LIST return options")
    options: set[bytes] = set()
    status: list[bytes] | None = None
    items = list(rest[1].items)
    while items:
        option = atom_upper(items.pop(0))
        if option == b"STATUS":
            if not items:
                raise ImapSyntaxError("STATUS needs a list")
            status = status_items(items.pop(0))
        elif option in (b"SUBSCRIBED", b"CHILDREN", b"SPECIAL-USE"):
            options.add(option)
        else:
            raise ImapSyntaxError("Unknown LIST return option")
    return options, status
