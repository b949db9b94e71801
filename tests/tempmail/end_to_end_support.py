"""What the temp-mail and freemail end-to-end tests share: a runtime with a temp-mail
domain, an HTTP site and the MX listener on real loopback sockets, and a JSON client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from twisted.internet import reactor

from a3mail.config import load_config
from a3mail.runtime import Runtime
from a3mail.smtp.factory import build_factory
from a3mail.smtp.stats import SmtpStats
from tests.support.store import StoreTestCase

DOMAIN = "temp.example"


def wire_bytes(message: EmailMessage) -> bytes:
    """*message* as SMTP carries it: every line ending CRLF."""
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def json_request(
    open_url: Callable[..., Any], url: str, method: str, body: Any, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    """Send *body* as JSON (none if None) with *open_url*; (status, content type, body),
    error statuses included."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, data=data, method=method, headers=headers
    )
    try:
        with open_url(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


class EndToEndTestCase(StoreTestCase):
    """A runtime (hostname ``mx.test``) whose :data:`DOMAIN` offers temp mail; the site of
    :meth:`build_site` listens at ``self.base`` and the MX at ``self.smtp_port``."""

    def config_overrides(self) -> dict[str, Any]:
        """Configuration overrides beyond the hostname."""
        return {}

    def build_site(self) -> Any:
        """The HTTP site under test."""
        raise NotImplementedError

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        config = load_config(
            None,
            data_dir=self.data_dir,
            overrides={"hostname": "mx.test", **self.config_overrides()},
        )
        self.runtime = Runtime(config, self.store, object(), reactor=reactor)
        await self.store.domains.add(DOMAIN)
        await self.store.tempmail.set_domain(DOMAIN, True)

    def start_listening(self) -> None:
        """Listen with the site and the MX on 127.0.0.1 (closed at cleanup)."""
        http_port = reactor.listenTCP(0, self.build_site(), interface="127.0.0.1")
        self.addCleanup(http_port.stopListening)
        self.base = f"http://127.0.0.1:{http_port.getHost().port}"
        mx: Any = build_factory(self.runtime, "mx", verifier=None, stats=SmtpStats())
        self.addCleanup(mx.context.reporter.idle)
        smtp_port = reactor.listenTCP(0, mx, interface="127.0.0.1")
        self.addCleanup(smtp_port.stopListening)
        self.smtp_port = smtp_port.getHost().port
