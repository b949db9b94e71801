#!/usr/bin/env python3
"""SMTP acceptance benchmark: a3mail's MX listener against aiosmtpd, both durable.

    python bench/smtp_accept.py [--messages 2000] [--concurrency 10] [--verify] [--dsn ...]

Sends N messages of about 4 KB over C concurrent connections, first reusing each
connection for many messages, then with one connection per message, to:

- a3mail: the ``smtp`` (MX) listener built as the service builds it, in its own process,
  over a store in a temporary data directory on PostgreSQL (``--dsn``, ``A3MAIL_TEST_DSN``
  or the test suite's embedded server; a fresh schema).  Full durable delivery: the file
  fsynced, linked into the maildir, the directory fsynced, the index committed, 250 after
  the commit.  Inbound SPF/DKIM/DMARC off, or with ``--verify`` on a static DNS table.
- aiosmtpd (its own process): a handler that writes each message to a file and fsyncs it
  (in the default executor, so that fsyncs overlap) before answering 250.

The client (this process) is asyncio over raw sockets, pipelining MAIL/RCPT/DATA in one
write as RFC 2920 allows, so that it is not the bottleneck.  Prints msgs/s for each server
and mode, the ratio a3mail/aiosmtpd, and the machine, as Markdown for docs/benchmarks.md.

Looking inside the a3mail process: ``BENCH_PROFILE=out.prof`` (cProfile of its reactor
thread), ``BENCH_PYSPY=out.txt`` (py-spy samples of every thread, collapsed stacks; needs
``pip install py-spy``), ``BENCH_PHASES=1`` (wall time of each store step per message).  At
exit it prints how many group-commit batches the deliveries took and its CPU time.  The
PostgreSQL CPU column counts every ``postgres`` process on the machine: on a machine where
other test suites use the same server it is not meaningful.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAIN = "bench.example"
RECIPIENT = f"user@{DOMAIN}"
SENDER = "sender@example.net"
WARMUP = 50


def message(n: int, size: int) -> bytes:
    """A plain-text message of about *size* bytes, CRLF line ends, dot-stuffed."""
    head = (
        f"From: Sender <{SENDER}>\r\nTo: {RECIPIENT}\r\nSubject: benchmark message {n}\r\n"
        f"Message-ID: <{n}.{os.getpid()}@example.net>\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


# -- servers (child processes) ---------------------------------------------------------------


def serve_a3mail(args: argparse.Namespace) -> None:
    """Run a3mail's MX listener until stdin closes."""
    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from a3mail.config import load_config
    from a3mail.runtime import Runtime
    from a3mail.smtp.factory import build_factory
    from a3mail.store import Database, Store

    config = load_config(
        None,
        data_dir=args.data,
        overrides={"hostname": "mx.bench.example", "smtp.max_connections_per_ip": 1000},
    )
    store = Store(
        Database(args.dsn, min_size=4, max_size=args.pool, schema=args.schema), Path(args.data)
    )
    runtime = Runtime(config=config, store=store, tls=None, reactor=reactor)

    async def start() -> None:
        await store.open()
        await store.domains.add(DOMAIN)
        await store.accounts.add(RECIPIENT)
        verifier = None
        if args.verify:
            from a3mail.smtp.authres import InboundVerifier, StaticResolver

            resolver = StaticResolver({("TXT", "example.net"): [b"v=spf1 ip4:127.0.0.1 -all"]})
            verifier = InboundVerifier(resolver, reactor, authserv_id="mx.bench.example")
        factory = build_factory(runtime, "mx", verifier=verifier)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=1024)
        print(f"PORT {port.getHost().port}", flush=True)
        reactor.addReader(_StdinWatcher(reactor))

    def go() -> None:
        Deferred.fromCoroutine(start()).addErrback(lambda f: (f.printTraceback(), reactor.stop()))

    phases = _time_phases(store) if os.environ.get("BENCH_PHASES") else {}

    def report() -> None:
        for name, (count, total) in sorted(phases.items()):
            print(
                f"a3mail phase {name}: {count} x {total / max(count, 1) * 1000:.2f} ms",
                file=sys.stderr,
            )
        grouped = getattr(store, "group_delivery", None)
        if grouped is not None and grouped.batches:
            print(
                f"a3mail: {grouped.delivered} deliveries in {grouped.batches} batches"
                f" ({grouped.delivered / grouped.batches:.1f} per batch); process CPU"
                f" {time.process_time():.1f} s (user {os.times().user:.1f} s,"
                f" system {os.times().system:.1f} s)",
                file=sys.stderr,
            )

    reactor.addSystemEventTrigger("before", "shutdown", report)
    reactor.callWhenRunning(go)
    reactor.run()


def _time_phases(store: Any) -> dict[str, list[float]]:
    """BENCH_PHASES=1: wall time of the store calls of each message (latency, not CPU)."""
    import functools

    phases: dict[str, list[float]] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        real = getattr(owner, name)

        @functools.wraps(real)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await real(*args, **kwargs)
            finally:
                entry = phases.setdefault(label, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    def timed_deferred(owner: Any, name: str, label: str) -> None:
        real = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()

            def done(result: Any) -> Any:
                entry = phases.setdefault(label, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start
                return result

            return real(*args, **kwargs).addBoth(done)

        setattr(owner, name, wrapper)

    timed_deferred(store.recipients, "check", "1 rcpt check")
    timed_deferred(store.spool, "open_writer", "2 open file")
    timed_deferred(store.spool, "finish", "3 fsync+parse")
    timed_deferred(store.group_delivery, "deliver", "4 group deliver")
    timed(store.group_delivery, "_add_all", "4b batch statement")
    real_link = store.group_delivery._link_batch

    def link_batch(batch: Any) -> None:
        start = time.perf_counter()
        try:
            real_link(batch)
        finally:  # (in a worker thread: the GIL makes this update safe enough for a bench)
            entry = phases.setdefault("4a link+dir fsync (thread)", [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    store.group_delivery._link_batch = link_batch
    return phases


class _StdinWatcher:
    """Stops the reactor when the parent closes our stdin."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def doRead(self) -> None:
        if not os.read(sys.stdin.fileno(), 1024):
            self.reactor.removeReader(self)
            self.reactor.stop()

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "stdin"


def serve_aiosmtpd(args: argparse.Namespace) -> None:
    """Run aiosmtpd with a write-and-fsync handler until stdin closes."""
    from aiosmtpd.smtp import SMTP

    directory = Path(args.data) / "aiosmtpd"
    directory.mkdir(parents=True, exist_ok=True)
    counter = [0]

    def write(data: bytes) -> None:
        counter[0] += 1
        path = directory / f"{time.time():.6f}.{os.getpid()}.{counter[0]}"
        with open(path, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.get_running_loop().run_in_executor(None, write, envelope.content)
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="aiosmtpd.bench.example"),
            "127.0.0.1",
            0,
            backlog=1024,
        )
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


def start_server(kind: str, args: argparse.Namespace, schema: str) -> tuple[Any, int]:
    command = [sys.executable, __file__, "--serve", kind, "--data", args.data]
    if kind == "a3mail":
        command += ["--dsn", args.dsn, "--schema", schema, "--pool", str(args.concurrency + 2)]
        if args.verify:
            command.append("--verify")
        if os.environ.get("BENCH_CPROFILE"):  # BENCH_CPROFILE=out.prof: cProfile of the server
            command[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_CPROFILE"]]
        if os.environ.get("BENCH_PYSPY"):  # BENCH_PYSPY=out.txt: py-spy samples (collapsed)
            spy = Path(sys.executable).with_name("py-spy")
            out = os.environ["BENCH_PYSPY"]
            command = [str(spy), "record", "-r", "200", "-f", "raw", "-o", out, "--", *command]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while line.startswith("py-spy>") or line == "\n":
        line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"{kind} server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_server(proc: Any) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)


# -- the client ----------------------------------------------------------------------------------


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def expect(reader: asyncio.StreamReader, code: bytes) -> None:
    reply = await read_reply(reader)
    if not reply.startswith(code):
        raise RuntimeError(f"expected {code!r}, got {reply!r}")


async def open_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await expect(reader, b"220")
    writer.write(b"EHLO client.example.net\r\n")
    await expect(reader, b"250")
    return reader, writer


async def transaction(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> None:
    writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode())
    await expect(reader, b"250")
    await expect(reader, b"250")
    await expect(reader, b"354")
    writer.write(data + b".\r\n")
    await expect(reader, b"250")


async def run_load(port: int, bodies: list[bytes], concurrency: int, reuse: bool) -> float:
    """Send every body; returns messages per second."""
    queue = list(reversed(bodies))

    async def worker() -> None:
        session = await open_session(port) if reuse else None
        while queue:
            data = queue.pop()
            if session is None:
                reader, writer = await open_session(port)
                await transaction(reader, writer, data)
                writer.write(b"QUIT\r\n")
                await expect(reader, b"221")
                writer.close()
                await writer.wait_closed()
            else:
                await transaction(*session, data)
        if session is not None:
            session[1].write(b"QUIT\r\n")
            await expect(session[0], b"221")
            session[1].close()
            await session[1].wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(bodies) / (time.perf_counter() - start)


# -- the run ---------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem:.1f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average before the run {load}"
    )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (0 for those gone)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postgres_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def count_delivered(dsn: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".messages').fetchone()  # noqa: S608
        return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--verify", action="store_true", help="SPF/DKIM/DMARC on static DNS")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--serve", choices=("a3mail", "aiosmtpd"), help=argparse.SUPPRESS)
    parser.add_argument("--data", default="", help=argparse.SUPPRESS)
    parser.add_argument("--schema", default="public", help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=int, default=12, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "a3mail":
        profile = os.environ.get("BENCH_PROFILE")
        if profile:  # BENCH_PROFILE=out.prof: profile the a3mail server process
            import cProfile

            return cProfile.runctx("serve_a3mail(args)", globals(), locals(), profile)
        return serve_a3mail(args)
    if args.serve == "aiosmtpd":
        return serve_aiosmtpd(args)

    from tests.support import pg

    args.dsn = args.dsn or os.environ.get("A3MAIL_TEST_DSN") or pg.dsn()
    schema = pg.fresh_schema("bench_smtp")
    info = machine()
    bodies = [message(n, args.size) for n in range(args.messages)]
    warmup = [message(-n, args.size) for n in range(1, WARMUP + 1)]
    results: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="a3mail-bench-") as tmp:
        args.data = tmp
        servers = {kind: start_server(kind, args, schema) for kind in ("a3mail", "aiosmtpd")}
        try:
            for mode, reuse in (("connection reuse", True), ("one connection per message", False)):
                for kind, (proc, port) in servers.items():
                    asyncio.run(run_load(port, warmup, args.concurrency, reuse))
                    pg_pids = postgres_pids()
                    before = (cpu_seconds([proc.pid]), cpu_seconds(pg_pids), time.process_time())
                    rate = asyncio.run(run_load(port, bodies, args.concurrency, reuse))
                    after = (cpu_seconds([proc.pid]), cpu_seconds(pg_pids), time.process_time())
                    results[(kind, mode)] = rate
                    cpu[(kind, mode)] = tuple(  # type: ignore[assignment]
                        (b - a) * 1000 / len(bodies) for a, b in zip(before, after)
                    )
        finally:
            for proc, _ in servers.values():
                stop_server(proc)
        delivered = count_delivered(args.dsn, schema)
        files = len(list((Path(tmp) / "aiosmtpd").iterdir()))
    pg.drop_schema(schema)
    expected = 2 * (args.messages + WARMUP)
    assert delivered == expected, f"a3mail delivered {delivered}, expected {expected}"
    assert files == expected, f"aiosmtpd wrote {files}, expected {expected}"

    verify = "SPF/DKIM/DMARC on (static DNS)" if args.verify else "verification off"
    print(f"Machine: {info}.")
    print(
        f"{args.messages} messages of {len(bodies[0])} bytes, {args.concurrency} connections, "
        f"a3mail {verify}; all {expected} messages of each server were checked stored.\n"
    )
    print("| mode | a3mail msgs/s | aiosmtpd msgs/s | ratio a3mail/aiosmtpd |")
    print("|---|---|---|---|")
    for mode in ("connection reuse", "one connection per message"):
        ours, theirs = results[("a3mail", mode)], results[("aiosmtpd", mode)]
        print(f"| {mode} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |")
    print("\nCPU milliseconds per message (server process / PostgreSQL / client):\n")
    print("| mode | a3mail | aiosmtpd |")
    print("|---|---|---|")
    for mode in ("connection reuse", "one connection per message"):
        row = [" / ".join(f"{x:.2f}" for x in cpu[(k, mode)]) for k in ("a3mail", "aiosmtpd")]
        print(f"| {mode} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
