"""A tiny tokenizer for tests: IMAP argument text -> tokens (quoted strings, parens, atoms).

Independent of the server's lexer so that the FETCH/SEARCH parser tests do not depend on it.
"""

from __future__ import annotations

from a3mail.imap.tokens import Atom, ParenList, String, Token


def toks(text: str | bytes) -> list[Token]:
    """Tokens of *text*; a ``[`` in an atom runs to its ``]`` (spaces included)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    stack: list[list[Token]] = [[]]
    pos = 0
    while pos < len(data):
        char = data[pos : pos + 1]
        if char == b" ":
            pos += 1
        elif char == b"(":
            stack.append([])
            pos += 1
        elif char == b")":
            items = stack.pop()
            stack[-1].append(ParenList(tuple(items)))
            pos += 1
        elif char == b'"':
            end = pos + 1
            value = bytearray()
            while data[end : end + 1] != b'"':
                if data[end : end + 1] == b"\\":
                    end += 1
                value += data[end : end + 1]
                end += 1
            stack[-1].append(String(bytes(value)))
            pos = end + 1
        else:
            end = pos
            depth = 0
            while end < len(data):
                c = data[end : end + 1]
                if c == b"[":
                    depth += 1
                elif c == b"]":
                    depth -= 1
                elif depth == 0 and c in (b" ", b"(", b")"):
                    break
                end += 1
            stack[-1].append(Atom(data[pos:end]))
            pos = end
    assert len(stack) == 1, "unbalanced parentheses in test input"
    return stack[0]
