"""What the command mixins may use of a session (implemented by
:class:`a3mail.imap.server.IMAPServer`); lets each command module be type-checked alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from a3mail.imap.states import State

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from a3mail.imap.compress import Deflate
    from a3mail.imap.framing import CommandReader
    from a3mail.imap.selected import SelectedMailbox
    from a3mail.imap.tokens import Token


class SessionAPI:
    """Attributes and methods shared by the session and its command mixins."""

    factory: Any
    transport: Any
    phase: State
    secure: bool
    account: Any
    selected: SelectedMailbox | None
    enabled: set[bytes]
    condstore: bool
    qresync: bool
    #: UIDs the last ``SEARCH RETURN (SAVE)`` found (``$``, RFC 5182), ascending.
    saved_uids: list[int]
    deflate: Deflate | None
    reader: CommandReader | None
    _closed: bool

    def send(self, data: bytes) -> None:
        """Write raw protocol bytes."""
        raise NotImplementedError

    def close(self) -> None:
        """End the session."""
        raise NotImplementedError

    def read_line(self) -> Deferred[Any]:
        """The next raw line from the client (None once the connection is gone)."""
        raise NotImplementedError

    def deselect(self) -> None:
        """Leave the selected state."""
        raise NotImplementedError

    def peer_ip(self) -> str | None:
        """The client's IP address."""
        raise NotImplementedError

    async def send_updates(self, *, allow_expunge: bool = True) -> None:
        """Untagged responses for changes to the selected mailbox."""
        raise NotImplementedError

    def capability_string(self) -> bytes:
        """The capabilities in the current state."""
        raise NotImplementedError

    async def refresh_selected(self) -> None:
        """Compare the selected mailbox with the store."""
        raise NotImplementedError

    def view(self) -> SelectedMailbox:
        """The selected mailbox."""
        raise NotImplementedError

    def message_uids(self, token: Token, uid_mode: bool) -> list[int]:
        """The UIDs a set names."""
        raise NotImplementedError

    def setTimeout(self, period: float | None) -> Any:
        """TimeoutMixin's."""
        raise NotImplementedError

    def resetTimeout(self) -> None:
        """TimeoutMixin's."""
        raise NotImplementedError
