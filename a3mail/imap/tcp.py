"""TCP socket options for IMAP sessions: no Nagle on our writes, quick ACKs for clients
that write one command in several pieces.

Both matter for latency, not throughput: without them a command costs an extra ~40 ms
(Linux's minimum delayed-ACK time) whenever one side writes in two parts and waits.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def no_delay(transport: Any) -> None:
    """Turn off Nagle's algorithm on a TCP transport (also through a TLS wrapper; a
    transport without it is left alone).  A response written in two parts (untagged lines,
    then the tagged line after a store round trip) would otherwise hold its second part
    until the client's delayed ACK of the first."""
    setter = getattr(transport, "setTcpNoDelay", None)
    if setter is not None:
        with contextlib.suppress(OSError):
            setter(True)


def tcp_socket(transport: Any) -> socket.socket | None:
    """The TCP socket under *transport* (a TLS wrapper forwards to its transport), or None."""
    for _ in range(3):
        if transport is None:
            return None
        sock = getattr(transport, "socket", None)
        if isinstance(sock, socket.socket):
            return sock
        transport = getattr(transport, "transport", None)
    return None


def quick_ack(transport: Any) -> bool:
    """ACK what has been received now instead of after the delayed-ACK timer.

    For a command that arrived in part: a client that writes a literal and its final CRLF
    in two ``send`` calls (Python's imaplib does) holds the CRLF back under Nagle's
    algorithm until the literal is acknowledged, and the server, having nothing to answer
    yet, would delay that ACK by 40 ms.  Returns True if the option could be set.
    """
    if _QUICKACK is None:
        return False
    sock = tcp_socket(transport)
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        return False
    return True
