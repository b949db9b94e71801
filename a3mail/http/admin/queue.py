"""The outbound queue: status, entries, retry, purge (see :mod:`a3mail.store.queue_admin` for
what the named queues incoming/outgoing/retry/bounce are)."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.http.admin.context import MAX_ID, AdminContext
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import InvalidRequest, NotFound
from a3mail.http.pagination import envelope, page_params
from a3mail.http.routes import endpoint
from a3mail.http.validation import Body, Field, query_str
from a3mail.store.queue import QueueEntry
from a3mail.store.queue_admin import QUEUE_NAMES, queue_of

#: Names accepted by DELETE /api/v1/queue/{queue_name} and ?queue= (deferred = retry).
QUEUE_CHOICES = (*QUEUE_NAMES, "deferred", "all")

RETRY = Body(
    {
        "ids": Field(
            "array",
            "Only these entries (default: every waiting entry).",
            minimum=1,
            maximum=1000,
            items=Field("integer", minimum=1, maximum=MAX_ID),
        ),
        "include_failed": Field(
            "boolean", "Also queue failed and bounced entries again (default false)."
        ),
    },
    "No body retries every deferred entry now.",
)


def entry_json(entry: QueueEntry) -> dict[str, Any]:
    """A queue entry as the API shows it."""
    return {
        "id": str(entry.id),
        "message_id": str(entry.message_id),
        "queue": queue_of(entry),
        "state": entry.state,
        "sender": entry.sender,
        "recipients": list(entry.recipients),
        "domain": entry.domain,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "last_error": entry.last_error,
        "size": entry.size,
        "created_at": entry.created_at,
    }


def _queue_name(name: str) -> str:
    if name not in QUEUE_CHOICES:
        raise NotFound(
            f"no such queue: {name[:50]}; use one of {', '.join(QUEUE_CHOICES)}",
            {"queue": name[:50]},
        )
    return "retry" if name == "deferred" else name


class QueueApi:
    """The outbound queue."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "GET", "/api/v1/queue/status", READ)
    async def queue_status(self, request: Any) -> dict[str, Any]:
        """Totals by state and by named queue."""
        summary = await self.ctx.store.queue_admin.summary()
        return {
            "total_messages": summary.total,
            "active_messages": summary.states.get("sending", 0),
            "deferred_messages": summary.queues["retry"],
            "bounced_messages": summary.queues["bounce"],
            "queues": summary.queues,
            "states": summary.states,
        }

    @endpoint(app, "GET", "/api/v1/queue", READ)
    async def list_queue(self, request: Any) -> dict[str, Any]:
        """A page of entries, oldest first (``?queue=`` one named queue; default all)."""
        page = page_params(request)
        name = query_str(request, "queue", "all") or "all"
        if name not in QUEUE_CHOICES:
            raise InvalidRequest(
                f"queue must be one of {', '.join(QUEUE_CHOICES)}", {"field": "queue"}
            )
        entries, total = await self.ctx.store.queue_admin.entries(
            queue=_queue_name(name), limit=page.limit, offset=page.offset
        )
        return envelope(request, [entry_json(e) for e in entries], total, page)

    @endpoint(app, "POST", "/api/v1/queue/retry", WRITE)
    async def retry(self, request: Any) -> dict[str, Any]:
        """Make deferred entries due now (and failed ones too with include_failed)."""
        body = self.ctx.body(request, RETRY)
        count = await self.ctx.store.queue_admin.retry(
            body.get("ids"), include_failed=body.get("include_failed", False)
        )
        await self.ctx.audit(request, "queue.retry", None, {**body, "retried": count})
        return {"retried": count}

    @endpoint(app, "DELETE", "/api/v1/queue/<queue_name>", WRITE)
    async def purge(self, request: Any, queue_name: str) -> dict[str, Any]:
        """Remove every entry of a named queue, except those being sent right now."""
        name = _queue_name(queue_name)
        result = await self.ctx.store.queue_admin.purge(name)
        await self.ctx.audit(
            request,
            "queue.purge",
            name,
            {"removed": result.removed, "skipped": result.skipped},
            severity="warning",
        )
        return {"queue": queue_name, "removed": result.removed, "skipped": result.skipped}
