"""Helpers shared by the a3mail.mime tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def crlf(text: str) -> bytes:
    """``text`` with ``\\n`` turned into CRLF, as UTF-8 bytes."""
    return text.replace("\n", "\r\n").encode("utf-8")


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a body tree, depth first, entering encapsulated messages."""
    yield node
    for child in node.get("children", []):
        yield from walk(child)
    if "message" in node:
        yield from walk(node["message"]["body"])


def by_section(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Nodes by section number (the first node wins, as an IMAP lookup would)."""
    out: dict[str, dict[str, Any]] = {}
    for node in walk(root):
        out.setdefault(node["section"], node)
    return out


#: A message with alternative text/html, an attachment and a forwarded
#: message that is itself multipart; part numbers per RFC 3501 in comments.
NESTED = crlf(
    "From: Alice <alice@example.com>\n"
    "To: bob@example.net\n"
    "Subject: nested\n"
    'Content-Type: multipart/mixed; boundary="XX"\n'
    "\n"
    "This is the preamble.\n"
    "--XX\n"  # 1
    "Content-Type: multipart/alternative; boundary=Alt\n"
    "\n"
    "--Alt\n"  # 1.1
    "Content-Type: text/plain; charset=UTF-8\n"
    "\n"
    "Hello Bob\n"
    "--Alt\n"  # 1.2
    "Content-Type: text/html; charset=UTF-8\n"
    "\n"
    "<p>Hello Bob</p>\n"
    "--Alt--\n"
    "--XX\n"  # 2
    "Content-Type: application/pdf; name=report.pdf\n"
    "Content-Transfer-Encoding: base64\n"
    "Content-Disposition: attachment; filename=report.pdf\n"
    "\n"
    "JVBERi0xLjQK\n"
    "--XX\n"  # 3
    "Content-Type: message/rfc822\n"
    "\n"
    "From: Carol <carol@example.org>\n"
    "Subject: inner\n"
    "Content-Type: multipart/mixed; boundary=In\n"
    "\n"
    "--In\n"  # 3.1
    "Content-Type: text/plain\n"
    "\n"
    "inner text\n"
    "--In\n"  # 3.2
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: deepest\n"
    "\n"
    "deepest body\n"  # 3.2.1
    "--In--\n"
    "--XX--\n"
    "epilogue\n"
)
