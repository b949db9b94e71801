"""``GET /api/v1/openapi.json``: the OpenAPI document (public: no key needed)."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.http.admin.context import AdminContext
from a3mail.http.routes import PUBLIC, endpoint


class OpenApiDoc:
    """Serves :func:`a3mail.http.openapi.document` (built once)."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx
        self._document: dict[str, Any] | None = None

    @endpoint(app, "GET", "/api/v1/openapi.json", PUBLIC)
    async def openapi(self, request: Any) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the admin API."""
        if self._document is None:
            from a3mail.http.openapi import document  # imports every group's declarations

            self._document = document()
        return self._document
