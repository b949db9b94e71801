"""List endpoints: ``page`` (from 1) and ``limit`` (default 20, max 100), and the envelope
``{"data", "meta": {page, limit, total, total_pages}, "links": {first, last, prev, next}}``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import attrs

from a3mail.http.responses import dumps
from a3mail.http.validation import query_int

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_PAGE = 1_000_000


@attrs.frozen
class Page:
    """Which slice of a list was asked for."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.limit


def page_params(request: Any, max_limit: int = MAX_LIMIT) -> Page:
    """``page`` and ``limit`` from the query string (400 naming the parameter if bad)."""
    page = query_int(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=max_limit)
    return Page(page, limit)


def envelope(
    request: Any, data: list[Any], total: int, page: Page, extra_meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The list response: data, meta and links (links keep the other query parameters)."""
    total_pages = max(1, -(-total // page.limit)) if total else 0
    path = request.path.decode("utf-8", "replace")
    others = [
        (k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
        for k, values in sorted(request.args.items())
        if k not in (b"page", b"offset")
        for v in values
    ]

    prefix = f"{path}?{urlencode(others)}&page=" if others else f"{path}?page="

    def link(number: int) -> str:
        return f"{prefix}{number}"

    meta: dict[str, Any] = {
        "page": page.page,
        "limit": page.limit,
        "total": total,
        "total_pages": total_pages,
    }
    meta.update(extra_meta or {})
    last = max(total_pages, 1)
    return {
        "data": data,
        "meta": meta,
        "links": {
            "first": link(1),
            "last": link(last),
            "prev": link(min(page.page - 1, last)) if page.page > 1 else None,
            "next": link(page.page + 1) if page.page < total_pages else None,
        },
    }


def raw_envelope(
    request: Any, data_json: str, total: int, page: Page, extra_meta: dict[str, Any] | None = None
) -> bytes:
    """:func:`envelope` as UTF-8 JSON, with *data_json* (a JSON array's text, trusted: built
    by the store) written as the ``data`` member without being parsed."""
    rest = envelope(request, [], total, page, extra_meta)
    del rest["data"]
    return b'{"data":' + data_json.encode() + b"," + dumps(rest)[1:]
