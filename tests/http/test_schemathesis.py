"""schemathesis (property-based API testing from the OpenAPI document) against the admin API
served on a loopback port: no 5xx, and every response matches the documented schema."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest

from a3mail.control import Control
from a3mail.mime import parse_message
from tests.http.support import ApiTestCase

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def schemathesis_command() -> str:
    """The schemathesis executable next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "schemathesis"
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        raise SkipTest("schemathesis is not installed (pip install schemathesis)")
    return found


class SchemathesisTests(ApiTestCase):
    overrides = {"http.rate_limit_per_key": 0, "http.rate_limit_per_ip": 0}
    timeout = 240

    def runtime(self):
        runtime = self.live_runtime()
        # POST /api/v1/server/restart must not stop (or re-execute) the test process: it is
        # left out of the run below, and this control would do nothing even if called.
        control = Control(runtime)
        control.at_exit = lambda action: None
        control.stop = lambda: None  # type: ignore[method-assign]
        runtime.control = control
        return runtime

    async def setUp(self):
        await super().setUp()
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        user = await self.make_user("alice@example.com")
        data = b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
        blob = await self.store.incoming(data)
        await self.store.messages.deliver(
            blob, [user["email"]], parse=lambda d: parse_message(d).to_json()
        )

    async def test_no_server_error_and_no_schema_violation(self):
        base = f"http://127.0.0.1:{self.port.getHost().port}"
        report = Path(self.mktemp()).absolute()
        args = [
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--header",
            f"Authorization: Bearer {self.admin}",
            "--exclude-path",
            "/api/v1/server/restart",
            "--max-examples",
            "8",
            "--generation-deterministic",
            "--seed",
            "7",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
            "--warnings",
            "off",
            "--report-dir",
            str(report),
        ]
        env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
        out, err, code = await getProcessOutputAndValue(
            schemathesis_command(), args, env=env, reactor=reactor
        )
        text = (out + err).decode("utf-8", "replace")
        self.assertEqual(code, 0, text[-6000:])
        generated = re.search(r"(\d+) generated", text)
        self.assertIsNotNone(generated, text[-3000:])
        self.assertGreater(int(generated.group(1)), 500, text[-3000:])  # it really ran
