"""SPF macro strings (RFC 7208 section 7): syntax checks and expansion.

A macro string mixes literal characters with C{%{letter transformers delimiters}}
expansions and the escapes C{%%}, C{%_} and C{%-}.  L{check_macro_string} and
L{check_domain_spec} validate a term when its record is parsed (a syntax error anywhere
makes the whole record a permerror); L{expand} substitutes values during evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

__all__ = [
    "EXPLANATION_ONLY_LETTERS",
    "TOPLABEL",
    "MacroSyntaxError",
    "check_domain_spec",
    "check_macro_string",
    "expand",
    "macro_letters",
    "truncate_domain",
]

#: Letters usable in every macro string.
LETTERS = frozenset("slodiphv")
#: Letters usable only in an explanation string (C{exp=} target's TXT).
EXPLANATION_ONLY_LETTERS = frozenset("crt")

_TOKEN = re.compile(
    r"%\{(?P<letter>[A-Za-z])(?P<digits>[0-9]*)(?P<reverse>[rR]?)(?P<delimiters>[-.+,/_=]*)\}"
    r"|(?P<escape>%[%_-])"
    r"|(?P<literal>[\x21-\x24\x26-\x7e]+)"
)
#: A top-level label: letters, digits and inner hyphens, not all digits.
TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z"
)
_ESCAPES = {"%%": "%", "%_": " ", "%-": "%20"}
#: The most right-hand parts a transformer can ask for that we bother counting.
_MAX_DIGITS = 6


class MacroSyntaxError(ValueError):
    """A macro string that does not follow RFC 7208 section 7.1."""


def _tokens(text: str) -> list[re.Match[str]]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise MacroSyntaxError(f"bad macro string at offset {position}")
        tokens.append(match)
        position = match.end()
    return tokens


def check_macro_string(text: str, *, explanation: bool = False) -> None:
    """Raise L{MacroSyntaxError} unless C{text} is a valid macro string."""
    allowed = LETTERS | EXPLANATION_ONLY_LETTERS if explanation else LETTERS
    for token in _tokens(text):
        letter = token.group("letter")
        if letter is None:
            continue
        if letter.lower() not in allowed:
            raise MacroSyntaxError(f"unknown macro letter {letter!r}")
        digits = token.group("digits")
        if digits and not digits.strip("0"):
            raise MacroSyntaxError("a transformer's digits must not be zero")


def check_domain_spec(text: str) -> None:
    """Raise L{MacroSyntaxError} unless C{text} is a domain-spec (macro string + domain end)."""
    if not text:
        raise MacroSyntaxError("empty domain-spec")
    tokens = _tokens(text)
    check_macro_string(text)
    last = tokens[-1]
    if last.group("literal") is None:
        return  # ends with a macro-expand
    # The domain-end: "." toplabel ["."], within the trailing literal.
    tail = last.group("literal")
    if tail.endswith("."):
        tail = tail[:-1]
    _, dot, toplabel = tail.rpartition(".")
    if not dot:
        raise MacroSyntaxError("domain-spec does not end in '.' and a top label")
    if not TOPLABEL.match(toplabel):
        raise MacroSyntaxError(f"bad top label {toplabel!r}")


def macro_letters(text: str) -> set[str]:
    """The macro letters (lower case) used in a valid macro string."""
    return {
        token.group("letter").lower()
        for token in _tokens(text)
        if token.group("letter") is not None
    }


def expand(text: str, values: Mapping[str, str]) -> str:
    """
    Expand a valid macro string.

    C{values} maps lower-case macro letters to their values; an upper-case letter's
    expansion is URL-escaped.  Transformers split the value on the delimiters (default
    C{.}), optionally reverse the parts, keep the right-most N and join them with dots.
    """
    out: list[str] = []
    for token in _tokens(text):
        if token.group("literal") is not None:
            out.append(token.group("literal"))
        elif token.group("escape") is not None:
            out.append(_ESCAPES[token.group("escape")])
        else:
            out.append(_expand_one(token, values))
    return "".join(out)


def _expand_one(token: re.Match[str], values: Mapping[str, str]) -> str:
    letter = token.group("letter")
    value = values.get(letter.lower(), "")
    delimiters = token.group("delimiters") or "."
    parts = re.split("[" + re.escape(delimiters) + "]", value)
    if token.group("reverse"):
        parts.reverse()
    digits = token.group("digits")
    if digits:
        keep = int(digits) if len(digits) <= _MAX_DIGITS else len(parts)
        if keep < len(parts):
            parts = parts[len(parts) - keep :]
    result = ".".join(parts)
    if letter.isupper():
        result = quote(result, safe="-._~")
    return result


def truncate_domain(name: str, limit: int = 253) -> str:
    """Remove left-most labels until C{name} is at most C{limit} characters (RFC 7208 7.3)."""
    while len(name) > limit:
        _, dot, rest = name.partition(".")
        if not dot:
            return ""
        name = rest
    return name
