"""Replies to pipelined commands written together (RFC 2920), for :class:`SMTPServer`.

A client that pipelines ``MAIL``, ``RCPT`` and ``DATA`` in one packet gets their three
replies in one write instead of three: each write is a system call that wakes the client
(and an event-loop registration), the largest cost per message after the store's.  Replies
are held while the server is still processing its input, or while a command waits for the
store with more commands behind it; they are written as soon as the server would otherwise
wait for the client, so no client waits for a reply that is held.
"""

from __future__ import annotations

from typing import Any


class ReplyBuffer:
    """Mixin: ``_replies`` held, written by :meth:`_flush_replies` / :meth:`_close`.

    The protocol provides ``transport``, ``_busy`` (a command waits for the store) and
    ``_input`` (the unprocessed input).
    """

    transport: Any
    _busy: bool
    _input: bytearray

    def _hold_replies(self) -> None:
        self._replies: list[bytes] = []

    def _flush_replies(self) -> None:
        """Write the held replies, unless a command is still at work with more input
        behind it (its reply and the next ones then go together)."""
        if self._replies and not (self._busy and self._input):
            self._write_replies()

    def _write_replies(self) -> None:
        """Write every held reply now, in one piece."""
        data, self._replies = b"".join(self._replies), []
        if data and not self.transport.disconnecting:
            self.transport.write(data)

    def _close(self) -> None:
        """Write every held reply, then close the connection."""
        self._write_replies()
        self.transport.loseConnection()
