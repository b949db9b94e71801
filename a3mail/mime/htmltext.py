"""A plain-text rendering of HTML: tags stripped, scripts/styles dropped, entities unescaped.

A single linear scan (no HTML parser state machine to trip over hostile input):
block-level tags become line breaks, runs of white space inside a line become
one space, and empty lines are dropped.
"""

from __future__ import annotations

import html
import re

from a3mail.caches import cached

_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9:_-]*)")
_SPACE = re.compile(r"\s+")
_SKIP = frozenset({"script", "style", "head", "title", "template", "xml"})
#: Elements whose unclosed start tag swallows the rest of the document.
_RAW = frozenset({"script", "style", "template", "xml"})
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "caption",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)


@cached("html_closing_tags", 16)
def _closing(name: str) -> re.Pattern[str]:
    return re.compile(r"</" + re.escape(name) + r"\b", re.I)


def html_to_text(markup: str) -> str:
    """Render ``markup`` as plain text, one block per line; never raises."""
    out: list[str] = []
    pos, n = 0, len(markup)
    while pos < n:
        lt = markup.find("<", pos)
        if lt < 0:
            out.append(_text(markup[pos:]))
            break
        if lt > pos:
            out.append(_text(markup[pos:lt]))
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            pos = n if end < 0 else end + 3
            continue
        m = _TAG.match(markup, lt)
        if m is None:
            if markup.startswith(("<!", "<?"), lt):
                gt = markup.find(">", lt)
                pos = n if gt < 0 else gt + 1
            else:
                out.append("<")
                pos = lt + 1
            continue
        gt = markup.find(">", m.end())
        if gt < 0:
            break
        pos = gt + 1
        name = m.group(1).lower()
        closing = markup[lt + 1] == "/"
        if name in _SKIP and not closing and markup[gt - 1] != "/":
            close = _closing(name).search(markup, pos)
            if close is not None:
                gt = markup.find(">", close.end())
                pos = n if gt < 0 else gt + 1
                continue
            if name in _RAW:
                break
        if name in _BLOCK:
            out.append("\n")
    lines = (_SPACE.sub(" ", line).strip() for line in "".join(out).split("\n"))
    return "\n".join(line for line in lines if line)


def _text(segment: str) -> str:
    text = html.unescape(segment) if "&" in segment else segment
    return _SPACE.sub(" ", text)
