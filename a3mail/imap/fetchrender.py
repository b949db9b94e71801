"""One ``* n FETCH (...)`` response from the message index record, its cached parse and its file.

:func:`render_fetch` returns the response as pieces: ``bytes`` to send as they are, and
:class:`FileRange` s for big literals that the server streams from the message file (so a
50 MB ``BODY[]`` is never held in memory).  Sections are served byte-exact from the stored file
using the byte offsets cached at delivery (``parsed["body"]``); ENVELOPE and BODYSTRUCTURE come
from the cached parse without reading the body.  Rendering never raises: an item that cannot
be rendered (hostile parse, unreadable file) is logged and answered with a safe value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

import attrs

from a3mail.imap import fetchspec as fs
from a3mail.imap.bodystructure import fallback_tree, render_body, render_envelope
from a3mail.imap.fetchspec import FetchItem, FetchSpec, Section
from a3mail.imap.quoting import literal
from a3mail.logs import get_logger
from a3mail.mime.decode import decode_transfer
from a3mail.mime.scan import header_end

log = get_logger(__name__)

#: Literals up to this size are read from the file here; bigger ones become FileRanges.
SMALL_READ = 64 * 1024
#: At most this much of a header block is read to answer HEADER.FIELDS.
MAX_HEADER_READ = 4 * 1024 * 1024
#: BINARY decodes a part in memory only up to this size (bigger parts are sent undecoded).
MAX_BINARY_DECODE = 16 * 1024 * 1024
#: The tree walk looking for a section gives up after this many nodes.
MAX_WALK = 100_000

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LINES = re.compile(rb"(?<=\n)")
_EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
_IDENTITY_ENCODINGS = frozenset({"7BIT", "8BIT", "BINARY", ""})


@attrs.frozen
class FileRange:
    """``length`` octets of the message file starting at ``offset`` (from the file's start),
    to be streamed by the server in place of this piece.  The literal's ``{length}\\r\\n``
    prefix is already in the preceding bytes piece."""

    offset: int
    length: int


class _Out:
    """Collects pieces, merging adjacent bytes."""

    def __init__(self) -> None:
        self.pieces: list[bytes | FileRange] = []

    def add(self, piece: bytes | FileRange) -> None:
        if isinstance(piece, bytes) and self.pieces and isinstance(self.pieces[-1], bytes):
            self.pieces[-1] += piece
        elif not isinstance(piece, bytes) or piece:
            self.pieces.append(piece)

    def extend(self, pieces: list[bytes | FileRange]) -> None:
        for piece in pieces:
            self.add(piece)


def render_fetch(
    spec: FetchSpec,
    msg: Any,
    seq: int,
    file: BinaryIO | None,
    *,
    with_uid: bool,
    with_modseq: bool,
    include_flags: bool = False,
) -> list[bytes | FileRange]:
    """The pieces of ONE ``* seq FETCH (...)\\r\\n`` response for *msg*.

    *msg* is a record from ``store.search.fetch_info`` (a ``FetchRecord``, with ``parsed``
    when *spec* ``.needs_parsed``).  *file* is the open message file (binary, seekable) and
    is required when *spec* ``.needs_file``; it is only read from (never closed) here.
    Items come in request order; ``UID`` is added first when *with_uid* (UID FETCH) and
    ``MODSEQ`` last when *with_modseq* (CONDSTORE enabled) unless asked already.  Pass
    *include_flags* when this FETCH has just set ``\\Seen``: ``FLAGS`` is then added (RFC 3501
    says the server SHOULD tell the client); *msg* must carry the new flags.
    Concatenating the pieces (FileRanges replaced by those bytes of the file) gives the
    response.  Never raises.
    """
    items = response_items(spec, with_uid, with_modseq, include_flags)
    source = _Source(msg, file)
    out = _Out()
    out.add(b"* %d FETCH (" % seq)
    for index, item in enumerate(items):
        if index:
            out.add(b" ")
        out.extend(_render_safely(item, source))
    out.add(b")\r\n")
    return out.pieces


def response_items(
    spec: FetchSpec, with_uid: bool, with_modseq: bool, include_flags: bool = False
) -> list[FetchItem]:
    """The items of a response to *spec*, in order (see :func:`render_fetch`)."""
    items = list(spec.items)
    names = {item.name for item in items}
    if with_uid and fs.UID not in names:
        items.insert(0, FetchItem(fs.UID))
    if with_modseq and fs.MODSEQ not in names:
        items.append(FetchItem(fs.MODSEQ))
    if include_flags and fs.FLAGS not in names:
        items.append(FetchItem(fs.FLAGS))
    return items


def _render_safely(item: FetchItem, source: _Source) -> list[bytes | FileRange]:
    out = _Out()
    try:
        _render_item(out, item, source)
    except Exception:
        log.failure(
            "FETCH {item} of message uid={uid} failed; sending a safe value",
            item=item.name,
            uid=source.uid,
        )
        out = _Out()
        out.add(_fallback(item, source))
    return out.pieces


def _fallback(item: FetchItem, source: _Source) -> bytes:
    if item.name == fs.ENVELOPE:
        return b"ENVELOPE " + _EMPTY_ENVELOPE
    if item.name in (fs.BODY, fs.BODYSTRUCTURE):
        tree = fallback_tree(source.size, 0)
        return item.name.encode() + b" " + render_body(tree, extensible=item.name != fs.BODY)
    if item.name == fs.BINARY_SIZE:
        return _label(item) + b" 0"
    return _label(item) + b' ""'


def _render_item(out: _Out, item: FetchItem, source: _Source) -> None:
    name = item.name
    if name in METADATA_ITEMS:
        out.add(render_metadata(name, source.msg, source.size))
    elif name == fs.ENVELOPE:
        out.add(b"ENVELOPE " + render_envelope(source.parsed.get("envelope")))
    elif name in (fs.BODY, fs.BODYSTRUCTURE):
        body = render_body(source.tree(), extensible=name == fs.BODYSTRUCTURE)
        out.add(name.encode() + b" " + body)
    elif name == fs.RFC822:
        _emit(out, b"RFC822", source, (0, source.size))
    elif name == fs.RFC822_HEADER:
        _emit(out, b"RFC822.HEADER", source, (0, source.header_size()))
    elif name == fs.RFC822_TEXT:
        _emit(out, b"RFC822.TEXT", source, (source.header_size(), source.size))
    elif name == fs.BODY_SECTION:
        assert item.section is not None
        content = _section_content(source, item.section)
        _emit(out, _label(item), source, _partial(content, item.partial))
    elif name in (fs.BINARY, fs.BINARY_SIZE):
        _render_binary(out, item, source)
    else:  # pragma: no cover - parse_fetch_items only makes the names above
        raise ValueError(f"unknown item {name}")


#: The items answered from the index record alone.
METADATA_ITEMS = frozenset({fs.UID, fs.FLAGS, fs.MODSEQ, fs.INTERNALDATE, fs.RFC822_SIZE})


def render_metadata(name: str, msg: Any, size: int) -> bytes:
    """One of :data:`METADATA_ITEMS` for *msg* (``size`` is its checked RFC822.SIZE)."""
    if name == fs.UID:
        return b"UID %d" % msg.uid
    if name == fs.FLAGS:
        return b"FLAGS (" + " ".join(msg.flag_names).encode("utf-8", "replace") + b")"
    if name == fs.MODSEQ:
        return b"MODSEQ (%d)" % msg.modseq
    if name == fs.INTERNALDATE:
        return b'INTERNALDATE "' + internal_date(msg.internal_date) + b'"'
    return b"RFC822.SIZE %d" % size


def _label(item: FetchItem) -> bytes:
    if item.section is None:
        return item.name.encode()
    head = {fs.BODY_SECTION: b"BODY[", fs.BINARY: b"BINARY[", fs.BINARY_SIZE: b"BINARY.SIZE["}
    out = head[item.name] + item.section.label() + b"]"
    if item.partial is not None:
        out += b"<%d>" % item.partial[0]
    return out


def internal_date(value: datetime) -> bytes:
    """``dd-Mon-yyyy hh:mm:ss +zzzz`` (RFC 3501 date-time, without the quotes)."""
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    text = f"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d} {value:%H:%M:%S} {zone}"
    return text.encode("ascii")


# -- the message's bytes -------------------------------------------------------------------

Content = bytes | tuple[int, int] | None


class _Source:
    """One message: its record, cached parse (validated lazily) and file."""

    def __init__(self, msg: Any, file: BinaryIO | None) -> None:
        self.msg = msg
        self.file = file
        self.uid = getattr(msg, "uid", None)
        self.size = max(0, int(getattr(msg, "size", 0)))
        parsed = getattr(msg, "parsed", None)
        self.parsed: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        self._tree: dict[str, Any] | None = None
        self._header_size: int | None = None

    def read(self, start: int, end: int) -> bytes:
        """The file's bytes in ``[start, end)`` (fewer if the file is shorter)."""
        if end <= start:
            return b""
        if self.file is None:
            raise ValueError("this FETCH needs the message file")
        self.file.seek(start)
        return self.file.read(end - start)

    def header_size(self) -> int:
        """Octets of the top-level header, blank line included."""
        if self._header_size is None:
            size = int(getattr(self.msg, "header_size", 0) or 0)
            if not 0 < size <= self.size:
                root = self.tree()
                size = root["body_start"] if root.get("header_start") == 0 else 0
            if not 0 < size <= self.size and self.size:
                head = self.read(0, min(self.size, MAX_HEADER_READ))
                size = header_end(head, 0, len(head))
            self._header_size = min(max(0, size), self.size)
        return self._header_size

    def tree(self) -> dict[str, Any]:
        """The cached body tree if its root is usable, else a one-part stand-in."""
        if self._tree is None:
            body = self.parsed.get("body")
            if isinstance(body, dict) and span(body, "header_start", "body_end", self.size):
                self._tree = body
            else:
                size = int(getattr(self.msg, "header_size", 0) or 0)
                self._tree = fallback_tree(self.size, size)
        return self._tree


def span(node: Any, first: str, last: str, size: int) -> tuple[int, int] | None:
    """``(node[first], node[last])`` if both are offsets within the message, in order."""
    if not isinstance(node, dict):
        return None
    a, b = node.get(first), node.get(last)
    for value in (a, b):
        if not isinstance(value, int) or isinstance(value, bool):
            return None
    assert isinstance(a, int) and isinstance(b, int)
    return (a, b) if 0 <= a <= b <= size else None


def _walk(root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Nodes of the tree in pre-order (a message/rfc822 part before its inner body)."""
    stack: list[Any] = [root]
    seen = 0
    while stack and seen < MAX_WALK:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        seen += 1
        yield node
        below: list[Any] = []
        children = node.get("children")
        if isinstance(children, list):
            below.extend(children)
        inner = node.get("message")
        if isinstance(inner, dict):
            below.append(inner.get("body"))
        stack.extend(reversed(below))


def find_section_node(root: dict[str, Any], part: tuple[int, ...]) -> dict[str, Any] | None:
    """The node numbered *part* (RFC 3501 section numbering), or None."""
    wanted = ".".join(str(n) for n in part)
    for node in _walk(root):
        if node.get("section") == wanted:
            return node
    return None


def _section_content(source: _Source, section: Section) -> Content:
    """Where a section's bytes are: a ``(start, end)`` range, filtered bytes, or None."""
    size = source.size
    if not section.part:
        header: tuple[int, int] | None = (0, source.header_size())
        if section.text == "":
            return (0, size)
        if section.text == fs.TEXT:
            return (source.header_size(), size)
    else:
        node = find_section_node(source.tree(), section.part)
        if node is None:
            return None
        if section.text == "":
            return span(node, "body_start", "body_end", size)
        if section.text == fs.MIME:
            return span(node, "header_start", "body_start", size)
        inner = node.get("message")
        if str(node.get("type")).lower() != "message" or not isinstance(inner, dict):
            return None
        body = inner.get("body")
        if section.text == fs.TEXT:
            return span(body, "body_start", "body_end", size)
        header = span(body, "header_start", "body_start", size)
    if header is None:
        return None
    if section.text == fs.HEADER:
        return header
    start, end = header
    block = source.read(start, min(end, start + MAX_HEADER_READ))
    names = {name.lower() for name in section.fields}
    return filter_header(block, names, keep=section.text == fs.HEADER_FIELDS)


def filter_header(block: bytes, names: set[bytes], *, keep: bool) -> bytes:
    """The fields of a header block whose (lower-cased) name is in *names* (``keep``) or not
    (``keep=False``), byte-exact with their continuation lines, then a blank line."""
    out: list[bytes] = []
    selected = False
    for line in _LINES.split(block):
        if not line:
            continue
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if selected:
                out.append(line)
            continue
        name, colon, _rest = line.partition(b":")
        selected = bool(colon) and (name.rstrip(b" \t").lower() in names) == keep
        if selected:
            out.append(line)
    if out and not out[-1].endswith(b"\n"):
        out.append(b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def _partial(content: Content, partial: tuple[int, int] | None) -> Content:
    if partial is None or content is None:
        return content
    origin, count = partial
    if isinstance(content, bytes):
        return content[origin : origin + count]
    start, end = content
    if origin >= end - start:
        return b""
    return (start + origin, min(end, start + origin + count))


def _emit(out: _Out, label: bytes, source: _Source, content: Content) -> None:
    """``label`` then the content as a literal (or ``""`` when empty or missing)."""
    out.add(label + b" ")
    if isinstance(content, tuple):
        start, end = content
        if end - start > SMALL_READ:
            out.add(b"{%d}\r\n" % (end - start))
            out.add(FileRange(start, end - start))
            return
        content = source.read(start, end)
    out.add(literal(content) if content else b'""')


def _render_binary(out: _Out, item: FetchItem, source: _Source) -> None:
    """BINARY[part]<partial> and BINARY.SIZE[part] (RFC 3516), decoded in memory."""
    assert item.section is not None
    if not item.section.part:
        content: Content = (0, source.size)
        encoding = ""
    else:
        node = find_section_node(source.tree(), item.section.part)
        content = span(node, "body_start", "body_end", source.size) if node else None
        encoding = str((node or {}).get("encoding") or "").upper()
    if content is not None and encoding not in _IDENTITY_ENCODINGS:
        start, end = content
        if end - start <= MAX_BINARY_DECODE:
            content = decode_transfer(source.read(start, end), encoding)
    if item.name == fs.BINARY_SIZE:
        length = 0 if content is None else _length(content)
        out.add(_label(item) + b" %d" % length)
        return
    content = _partial(content, item.partial)
    if isinstance(content, tuple) and content[1] - content[0] <= SMALL_READ:
        content = source.read(*content)
    if isinstance(content, bytes) and b"\x00" in content:
        out.add(_label(item) + b" ~" + literal(content))
        return
    _emit(out, _label(item), source, content)


def _length(content: bytes | tuple[int, int]) -> int:
    return len(content) if isinstance(content, bytes) else content[1] - content[0]
