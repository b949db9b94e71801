#!/usr/bin/env python3
"""POP3 RETR benchmark: throughput of one 10 MB message, and RETR of 1,000 small messages.

    python bench/pop3_retr.py [--rounds 5] [--dsn postgresql://...]

Starts its own a3mail POP3 listeners (plain and pop3s, built exactly as the service
builds them) on 127.0.0.1 over a store in a temporary data directory, with an embedded
PostgreSQL there (or the database of --dsn, in a fresh schema).  The client is Python's
poplib, run in a separate process so that it does not share the server's interpreter.

The peer is the floor for that client: a bare blocking socket server (also its own
process) answering RETR with the same messages, dot-stuffed beforehand, from memory in
one ``sendall``: no store, no files, no TLS, no Twisted.  a3mail / floor is the ratio.
Prints the figures and the machine as a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import poplib
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER_BIG = "big@bench.example"
USER_SMALL = "small@bench.example"
PASSWORD = "bench password"  # noqa: S105 - a throwaway account in a temp store
MB = 1024 * 1024


# -- the client (a child process) -------------------------------------------------------------


def client(spec: dict[str, Any]) -> dict[str, Any]:
    """Log in, RETR as asked, return timings.  Runs in its own process."""
    if spec["tls"]:
        context = ssl.create_default_context(cafile=spec["cafile"])
        pop: poplib.POP3 = poplib.POP3_SSL("127.0.0.1", spec["port"], context=context)
    else:
        pop = poplib.POP3("127.0.0.1", spec["port"])
    pop.user(spec["user"])
    pop.pass_(PASSWORD)
    count, total = pop.stat()
    result: dict[str, Any] = {"count": count, "octets": total}
    if spec["mode"] == "big":
        times = []
        for _ in range(spec["rounds"]):
            start = time.perf_counter()
            _, lines, _ = pop.retr(1)
            times.append(time.perf_counter() - start)
            received = sum(len(line) + 2 for line in lines)
            assert received == total, (received, total)  # byte-exact (dots unstuffed)
        result["seconds"] = times
    else:
        start = time.perf_counter()
        for number in range(1, count + 1):
            pop.retr(number)
        result["seconds"] = [time.perf_counter() - start]
    pop.quit()
    return result


# -- the floor peer (a child process) ---------------------------------------------------------


def floor_server(directory: str) -> None:
    """Serve the messages in *directory* (sorted by name) until killed; print the port."""
    import re
    import socket

    files = sorted(Path(directory).iterdir())
    bodies = [path.read_bytes() for path in files]
    replies = [
        b"+OK %d octets\r\n" % len(body) + re.sub(rb"(^|\n)\.", rb"\1..", body) + b".\r\n"
        for body in bodies
    ]
    stat = b"+OK %d %d\r\n" % (len(bodies), sum(len(body) for body in bodies))
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"+OK floor\r\n")
            for line in lines:
                words = line.split()
                verb = words[0].upper() if words else b""
                if verb == b"RETR":
                    conn.sendall(replies[int(words[1]) - 1])
                elif verb == b"STAT":
                    conn.sendall(stat)
                else:
                    conn.sendall(b"+OK\r\n")
                    if verb == b"QUIT":
                        break


# -- the server (this process) ----------------------------------------------------------------


def big_message(size: int) -> bytes:
    """About *size* bytes: headers, then 76-character base64-like lines (some start with a dot)."""
    head = b"From: bench@remote.example\r\nTo: big@bench.example\r\nSubject: 10 MB\r\n\r\n"
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
    dotted = b"." + line[1:]
    body = (line * 99 + dotted) * (size // (len(line) * 100) + 1)
    return head + body[: size - len(head) - 2] + b"\r\n"


def small_message(n: int) -> bytes:
    """A message of about 4 KB."""
    head = f"From: bench@remote.example\r\nSubject: small {n}\r\n\r\n".encode()
    return head + (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do.\r\n" * 62)


async def serve_and_measure(reactor: Any, args: argparse.Namespace, data_dir: Path) -> None:
    from twisted.internet.threads import deferToThread

    from a3mail.auth.passwords import hash_password
    from a3mail.listeners import IMPLICIT_TLS, PROTOCOL_FACTORIES
    from a3mail.runtime import Runtime
    from a3mail.store import Database, Store
    from a3mail.tls import ServerTLS, wrap_server_factory
    from bench.common import bench_config

    config = bench_config(args, data_dir)
    store = Store(Database(args.dsn, schema=args.schema), data_dir, fsync=False)
    await store.open()
    try:
        print("setting up: accounts and messages ...", file=sys.stderr)
        await store.domains.add("bench.example")
        secret = hash_password(PASSWORD)
        big = await store.accounts.add(USER_BIG, password_hash=secret)
        small = await store.accounts.add(USER_SMALL, password_hash=secret)
        big_data = big_message(10 * MB)
        await store.messages.deliver(await store.incoming(big_data), [big.address])
        floor_dirs = {"big": data_dir / "floor-big", "small": data_dir / "floor-small"}
        for directory in floor_dirs.values():
            directory.mkdir()
        (floor_dirs["big"] / "1.eml").write_bytes(big_data)
        for n in range(args.small):
            data = small_message(n)
            await store.messages.deliver(await store.incoming(data), [small.address])
            (floor_dirs["small"] / f"{n:06d}.eml").write_bytes(data)

        tls = ServerTLS.from_config(config.tls, config.hostname)
        runtime = Runtime(config=config, store=store, tls=tls, reactor=reactor)
        ports = {}
        for name in ("pop3", "pop3s"):
            factory = PROTOCOL_FACTORIES[name](runtime)
            if name in IMPLICIT_TLS:
                factory = wrap_server_factory(factory, tls)
            ports[name] = reactor.listenTCP(0, factory, interface="127.0.0.1")

        async def run_client(**spec: Any) -> dict[str, Any]:
            spec["cafile"] = str(config.tls.certificate)
            command = [sys.executable, __file__, "--client", json.dumps(spec)]
            done = await deferToThread(
                subprocess.run, command, capture_output=True, text=True, check=True
            )
            return json.loads(done.stdout)  # type: ignore[no-any-return]

        async def run_floor(mode: str, **spec: Any) -> dict[str, Any]:
            command = [sys.executable, __file__, "--floor", str(floor_dirs[mode])]
            floor = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                port = int(await deferToThread(floor.stdout.readline))  # type: ignore[union-attr]
                return await run_client(port=port, tls=False, mode=mode, user="floor", **spec)
            finally:
                floor.terminate()
                await deferToThread(floor.wait)

        results = {}
        for name, tls_on in (("pop3", False), ("pop3s", True)):
            print(f"RETR of the 10 MB message over {name} ...", file=sys.stderr)
            results[f"big_{name}"] = await run_client(
                port=ports[name].getHost().port, tls=tls_on, user=USER_BIG, mode="big",
                rounds=args.rounds,
            )  # fmt: skip
        print(f"RETR of {args.small} small messages ...", file=sys.stderr)
        results["small_pop3"] = await run_client(
            port=ports["pop3"].getHost().port, tls=False, user=USER_SMALL, mode="small", rounds=1
        )
        print("the same against the floor peer ...", file=sys.stderr)
        results["big_floor"] = await run_floor("big", rounds=args.rounds)
        results["small_floor"] = await run_floor("small", rounds=1)
        for port in ports.values():
            await port.stopListening()
    finally:
        await store.close()
    report(results, len(big_data), args)


def report(results: dict[str, Any], big_size: int, args: argparse.Namespace) -> None:
    """Print the Markdown section."""
    from bench.common import machine

    m = machine()

    def big_rate(key: str) -> float:
        return big_size / MB / statistics.median(results[key]["seconds"])

    def small_rate(key: str) -> float:
        return float(results[key]["count"] / results[key]["seconds"][0])

    small = results["small_pop3"]
    average_kb = small["octets"] / small["count"] / 1024
    floor_big, floor_small = big_rate("big_floor"), small_rate("small_floor")
    rows = [
        (
            f"RETR of one {big_size / MB:.0f} MB message, pop3 (MB/s)",
            big_rate("big_pop3"),
            floor_big,
        ),
        (
            f"RETR of one {big_size / MB:.0f} MB message, pop3s (MB/s)",
            big_rate("big_pop3s"),
            floor_big,
        ),
        (
            f"RETR of {small['count']} messages of {average_kb:.1f} KB, one connection"
            " (messages/s)",
            small_rate("small_pop3"),
            floor_small,
        ),
    ]
    lines = [
        f"`python bench/pop3_retr.py --rounds {args.rounds} --small {args.small}`, "
        f"{time.strftime('%Y-%m-%d')}. Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM,"
        f" {m['os']}, Python {m['python']}.",
        "",
        "| measurement | a3mail | floor | ratio |",
        "|---|---|---|---|",
    ]
    for label, ours, floor in rows:
        lines.append(f"| {label} | {ours:.0f} | {floor:.0f} | {ours / floor:.2f} |")
    lines.append("")
    lines.append(
        f"MB/s are medians of {args.rounds} RETRs. The floor is the same poplib client against"
        " a bare socket server (no TLS) sending pre-stuffed messages from memory."
    )
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="RETRs of the big message")
    parser.add_argument("--small", type=int, default=1000, help="number of small messages")
    parser.add_argument("--dsn", default="", help="PostgreSQL to use (default: embedded)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return
    if args.floor:
        floor_server(args.floor)
        return

    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    from bench.common import bench_database

    data_dir = Path(tempfile.mkdtemp(prefix="a3mail-bench-pop3-"))
    try:
        with bench_database(args, data_dir, "bench_pop3"):
            task.react(
                lambda reactor: Deferred.fromCoroutine(serve_and_measure(reactor, args, data_dir))
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
