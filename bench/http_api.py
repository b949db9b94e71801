"""Admin API throughput: ``GET /api/v1/users/{id}/messages`` (20 per page) on a 10,000-message
mailbox, 50 concurrent clients (wrk), against a minimal twisted.web peer doing the same SQL.

Both servers run in their own process on Twisted's asyncio reactor with psycopg, over the
same PostgreSQL (the test suite's embedded one, or A3MAIL_TEST_DSN):

- a3mail: the real ``http`` listener (``a3mail.http.factory.build_site``): request id, bearer
  key authentication through the store, rate limiting (limit set high enough never to
  refuse), permission check, query validation, the one-statement page query, JSON with
  pagination links, one log line per request written to a file.
- peer: a bare twisted.web resource that looks the bearer key's digest up with one SELECT,
  runs the same page statement, and writes the page's JSON (built by PostgreSQL) in a
  ``{"data": ...}`` object — no key cache, logging, rate limit, validation or links: the
  floor for this stack with two statements per request.

Run:  python bench/http_api.py [--messages 10000] [--duration 15] [--connections 50]
The client is wrk (``apt-get install wrk``); without it, a Python client with the same
number of connections runs in a separate process (slower: numbers are then client-bound).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MESSAGE = (
    b"From: Bench Sender <sender@remote.example>\r\nTo: user@example.com, other@example.net\r\n"
    b"Subject: benchmark message\r\nDate: Mon, 15 Jan 2024 10:30:00 +0000\r\n"
    b"Message-ID: <bench@remote.example>\r\n\r\n"
) + b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n" * 40


# -- the servers (run in a child process) -------------------------------------------------


def serve(kind: str, schema: str, data_dir: str, port_file: str) -> None:
    """Run one server until killed; write its port to *port_file* when listening."""
    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from a3mail.store import Database, Store
    from tests.support import pg

    log_file = open(Path(data_dir) / f"{kind}.log", "a", encoding="utf-8")  # noqa: SIM115
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log_file)], redirectStandardIO=False)
    store = Store(Database(pg.dsn(), min_size=8, max_size=8, schema=schema), Path(data_dir))

    async def start() -> None:
        await store.open()
        site = a3mail_site(store, data_dir) if kind == "a3mail" else peer_site(store)
        port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=256)
        Path(port_file).write_text(str(port.getHost().port))

    Deferred.fromCoroutine(start()).addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    profile_to = os.environ.get("A3MAIL_BENCH_PROFILE")
    if profile_to:  # python bench/http_api.py with this set: a cProfile of each server
        import cProfile
        import signal

        profiler = cProfile.Profile()
        signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
        profiler.runcall(reactor.run)
        profiler.dump_stats(f"{profile_to}.{kind}")
        return
    reactor.run()


def a3mail_site(store: object, data_dir: str) -> object:
    """The real listener's Site."""
    from twisted.internet import reactor

    from a3mail.config import load_config
    from a3mail.http.factory import build_site
    from a3mail.runtime import Runtime

    config = load_config(
        None,
        data_dir=data_dir,
        overrides={"http.rate_limit_per_key": 1_000_000_000, "http.rate_limit_per_ip": 0},
    )
    runtime = Runtime(config=config, store=store, tls=None, reactor=reactor)  # type: ignore[arg-type]
    return build_site(runtime)


def peer_site(store: object) -> object:
    """A minimal twisted.web resource doing the same SQL as a3mail's handler."""
    from twisted.internet.defer import Deferred
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET, Site

    from a3mail.auth.apikeys import token_digest
    from a3mail.store.summaries import _PAGE

    db = store.db  # type: ignore[attr-defined]
    sql = _PAGE.format(order="DESC")

    class Messages(Resource):
        isLeaf = True

        def render_GET(self, request: object) -> object:
            Deferred.fromFuture(asyncio.ensure_future(self.respond(request)))  # psycopg: asyncio
            return NOT_DONE_YET

        async def respond(self, request: object) -> None:
            header = request.getHeader(b"authorization") or b""  # type: ignore[attr-defined]
            digest = token_digest(header.decode().partition(" ")[2])
            async with db.connection() as conn:
                cur = await conn.execute(
                    "SELECT id FROM api_keys WHERE (key_hash = %s OR secret_hash = %s)"
                    " AND revoked_at IS NULL",
                    (digest, digest),
                )
                if await cur.fetchone() is None:
                    request.setResponseCode(401)  # type: ignore[attr-defined]
                    request.finish()  # type: ignore[attr-defined]
                    return
                account_id = int(request.path.split(b"/")[4])  # type: ignore[attr-defined]
                cur = await conn.execute(
                    sql, {"limit": 20, "offset": 0, "account": account_id, "mailbox": "INBOX"}
                )
                row = await cur.fetchone()
            body = b'{"data":' + row["page_json"].encode() + b"}"
            request.setHeader(b"content-type", b"application/json")  # type: ignore[attr-defined]
            request.write(body)  # type: ignore[attr-defined]
            request.finish()  # type: ignore[attr-defined]

    site = Site(Messages())
    site.log = lambda request: None  # type: ignore[method-assign]
    return site


# -- setup and measurement (the parent process) -----------------------------------------------


def populate(schema: str, data_dir: Path, messages: int) -> tuple[int, str]:
    """Create a user with *messages* messages in INBOX and an API key; returns (id, token)."""
    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, gatherResults

    from a3mail.auth import apikeys
    from a3mail.mime import parse_message
    from a3mail.store import Database, Store
    from tests.support import pg

    store = Store(Database(pg.dsn(), min_size=4, max_size=8, schema=schema), data_dir, fsync=False)
    parsed = parse_message(MESSAGE).to_json()
    result: list[object] = []

    async def run() -> None:
        await store.open()
        await store.domains.add("example.com")
        account = await store.accounts.add("user@example.com")
        blob = await store.incoming(MESSAGE)
        remaining = [messages]

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                await store.messages.deliver(
                    blob, [account.address], parsed=parsed, keep_source=True
                )

        await gatherResults([Deferred.fromCoroutine(worker()) for _ in range(8)])
        new = apikeys.generate()
        await store.keys.create(
            key_id=new.key_id,
            key_hash=new.key_hash,
            secret_hash=new.secret_hash,
            key_prefix=new.key_prefix,
            account_id=account.id,
            name="bench",
            permissions=["read"],
        )
        await store.close()
        result.extend([account.id, new.key])

    done = Deferred.fromCoroutine(run())
    done.addErrback(lambda f: result.append(f))
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
    if len(result) != 2:
        raise SystemExit(f"setup failed: {result}")
    return int(result[0]), str(result[1])  # type: ignore[call-overload]


def start_server(kind: str, schema: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server process; returns it and its port."""
    port_file = data_dir / f"{kind}.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, schema, str(data_dir), str(port_file)]
    )
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{kind} server did not start")
        time.sleep(0.1)
    return process, int(port_file.read_text())


def run_wrk(url: str, token: str, duration: int, connections: int) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) measured by wrk."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        result[f"p{pct}"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def run_python_client(url: str, token: str, duration: int, connections: int) -> dict[str, float]:
    """The fallback client: *connections* keep-alive connections in a separate process."""
    code = r"""
import http.client, sys, threading, time
from urllib.parse import urlsplit
url, token, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
parts = urlsplit(url)
times, bad, stop = [], [0], time.monotonic() + duration
def worker():
    c = http.client.HTTPConnection(parts.hostname, parts.port)
    while time.monotonic() < stop:
        t = time.perf_counter()
        c.request("GET", parts.path + "?" + parts.query, headers={"Authorization": token})
        r = c.getresponse()
        r.read()
        times.append(time.perf_counter() - t)
        bad[0] += r.status != 200
ts = [threading.Thread(target=worker) for _ in range(int(sys.argv[4]))]
for t in ts: t.start()
for t in ts: t.join()
times.sort()
p50, p99 = times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000
print(len(times) / duration, p50, p99, bad[0])
"""
    out = subprocess.run(
        [sys.executable, "-c", code, url, f"Bearer {token}", str(duration), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        "rps": float(out[0]),
        "p50": float(out[1]),
        "p99": float(out[2]),
        "non2xx": float(out[3]),
    }


def machine() -> str:
    """nproc, CPU model and RAM of this machine."""
    model = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        kib = int(f.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {kib / 1024 / 1024:.1f} GiB RAM"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--serve", nargs=4, metavar=("KIND", "SCHEMA", "DIR", "PORTFILE"))
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    from tests.support import pg

    schema = pg.fresh_schema("benchhttp")
    with tempfile.TemporaryDirectory(prefix="a3mail-bench-http-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        user_id, token = populate(schema, data_dir, args.messages)
        print(f"setup: {args.messages} messages in {time.perf_counter() - started:.1f} s")
        client = run_wrk if shutil.which("wrk") else run_python_client
        rows = []
        for kind in ("a3mail", "peer"):
            process, port = start_server(kind, schema, data_dir)
            try:
                url = f"http://127.0.0.1:{port}/api/v1/users/{user_id}/messages?limit=20"
                client(url, token, 3, args.connections)  # warm up
                rows.append((kind, client(url, token, args.duration, args.connections)))
            finally:
                process.terminate()
                process.wait(10)
    pg.drop_schema(schema)
    print(
        f"machine: {machine()}; client: {client.__name__}, {args.connections} connections,"
        f" {args.duration} s"
    )
    print("| server | requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    for kind, r in rows:
        print(f"| {kind} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['non2xx']:.0f} |")
    ratio = rows[0][1]["rps"] / rows[1][1]["rps"]
    print(f"a3mail / peer: {ratio:.2f}")


if __name__ == "__main__":
    main()
