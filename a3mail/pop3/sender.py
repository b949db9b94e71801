"""Streams one stored message to a POP3 client, dot-stuffed, with flow control.

:class:`MessageSender` is a pull producer: the transport asks for the next chunk only when
its buffer has drained, so a 50 MB message never sits in memory, and a client that stops
reading stops the reading of the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPullProducer
from zope.interface import implementer

from a3mail.pop3.framing import DotStuffer, TopFilter

CHUNK_SIZE = 64 * 1024


class SendAborted(Exception):
    """The transfer was stopped before the end (connection lost or session ended)."""


@implementer(IPullProducer)
class MessageSender:
    """Writes a message file (all of it, or what a :class:`TopFilter` keeps) to *consumer*.

    :meth:`start` registers with the consumer and returns a Deferred that fires with the
    number of message bytes sent once the terminator is written, or fails with
    :class:`SendAborted` (stopped) or the ``OSError`` that interrupted reading.  The file
    is closed in every case.  *on_progress* is called after every chunk written.
    """

    def __init__(
        self,
        file: BinaryIO,
        consumer: IConsumer,
        *,
        top: TopFilter | None = None,
        on_progress: Callable[[], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.file = file
        self.consumer = consumer
        self.top = top
        self.on_progress = on_progress
        self.chunk_size = chunk_size
        self.stuffer = DotStuffer()
        self.done: Deferred[int] = Deferred()
        self._finished = False

    def start(self) -> Deferred[int]:
        """Begin sending; see the class docstring for the result."""
        self.consumer.registerProducer(self, False)
        return self.done

    def resumeProducing(self) -> None:
        """Write the next chunk (and the terminator after the last one)."""
        if self._finished:
            return
        try:
            out, last = self._next_output()
        except OSError as e:
            self._finish(e)
            return
        if last:
            out += self.stuffer.end()
        if out:
            self.consumer.write(out)
        if last:
            self._finish(None)
        elif self.on_progress is not None:
            self.on_progress()

    def _next_output(self) -> tuple[bytes, bool]:
        """The stuffed bytes of the next chunk, and whether the message is complete."""
        while True:
            chunk, at_end = self._read_chunk()
            if self.top is not None:
                chunk = self.top.feed(chunk)
                at_end = at_end or self.top.done
            if chunk or at_end:
                return self.stuffer.feed(chunk), at_end

    def _read_chunk(self) -> tuple[bytes, bool]:
        """Up to ``chunk_size`` bytes, and whether the file ended.

        The end is noticed with the last data, so the terminator goes out in the same write:
        a terminator written on its own waits for the client's delayed ACK (Nagle), 40 ms
        per message on Linux.
        """
        parts = [self.file.read(self.chunk_size)]
        size = len(parts[0])
        while size < self.chunk_size:
            more = self.file.read(self.chunk_size - size)
            if not more:
                return b"".join(parts), True
            parts.append(more)
            size += len(more)
        return b"".join(parts), False

    def pauseProducing(self) -> None:
        """Nothing to do: a pull producer is simply not asked for more."""

    def stopProducing(self) -> None:
        """The consumer will take no more (e.g. the connection was lost)."""
        self._finish(SendAborted("transfer stopped"))

    def _finish(self, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        with contextlib.suppress(OSError):
            self.file.close()
        if error is None:
            self.consumer.unregisterProducer()
            self.done.callback(self.stuffer.sent)
        else:
            if not isinstance(error, SendAborted):
                self.consumer.unregisterProducer()
            self.done.errback(error)


def send_message(file: BinaryIO, consumer: IConsumer, **kwargs: Any) -> Deferred[int]:
    """Stream *file* to *consumer* (see :class:`MessageSender`)."""
    return MessageSender(file, consumer, **kwargs).start()
