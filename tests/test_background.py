"""Background services: A3MailService starts them once the store is open and stops them
before it closes."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service

from a3mail.background import BACKGROUND_SERVICES, lazy_service
from a3mail.config import load_config
from a3mail.runtime import Runtime
from a3mail.service import A3MailService
from tests.support import pg
from tests.support.store import StoreTestCase


class Spy(Service):
    def __init__(self, store: Any, seen: list[tuple[str, bool]]) -> None:
        self.store = store
        self.seen = seen

    def startService(self) -> None:
        super().startService()
        self.seen.append(("start", self.store.db.pool.closed))

    def stopService(self) -> None:
        super().stopService()
        self.seen.append(("stop", self.store.db.pool.closed))


class BackgroundServiceTests(StoreTestCase):
    async def test_background_services_run_while_the_store_is_open(self):
        store = self.make_store()  # A3MailService opens and closes it
        config = load_config(
            None,
            overrides={
                "data_dir": str(self.data_dir),
                "database": {"dsn": pg.dsn(), "schema": self.schema},
            },
        )
        runtime = Runtime(config=config, store=store, tls=None, reactor=None)  # type: ignore[arg-type]
        seen: list[tuple[str, bool]] = []
        service = A3MailService(
            runtime,
            endpoint_factory=lambda reactor, description: None,  # type: ignore[arg-type,return-value]
            protocols={},
            background={"spy": lambda rt: Spy(rt.store, seen)},
        )
        service.startService()
        await service.ready
        self.assertEqual(seen, [("start", False)])
        self.assertEqual([s.name for s in service.background], ["spy"])
        self.assertEqual(list(service), [])  # not among the listeners
        await service.stopService()
        self.assertEqual(seen, [("start", False), ("stop", False)])
        self.assertTrue(store.db.pool.closed)

    def test_webhooks_are_registered_lazily(self):
        self.assertEqual(
            BACKGROUND_SERVICES["webhooks"].__qualname__,
            "lazy(a3mail.ops.webhooks:build_service)",
        )
        self.assertEqual(
            lazy_service("tests.test_background:build_marker")("runtime"), ("built", "runtime")
        )


def build_marker(runtime: Any) -> Any:
    return ("built", runtime)
