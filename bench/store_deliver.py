"""Store delivery throughput: a3mail's durable deliver() against a bare maildir writer.

Both sides make each message durable the same way (write + fsync the file, link it into a
maildir, fsync the directory); a3mail also commits the index rows, quota and UID bookkeeping
in PostgreSQL and announces the message on the event bus.  The peer is the floor: what the
disk alone allows.  Run:  python bench/store_deliver.py [--messages N] [--concurrency C]
Uses A3MAIL_TEST_DSN, or starts the embedded PostgreSQL of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MESSAGE = (
    b"From: Bench <bench@remote.example>\r\nTo: user@example.com\r\nSubject: benchmark\r\n"
    b"Message-ID: <bench@remote.example>\r\n\r\n" + b"x" * 76 + b"\r\n"
) + b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n" * 52


def maildir_peer(root: Path, count: int, concurrency: int) -> float:
    """Messages per second for write+fsync+link+fsync(dir) into a plain maildir."""
    for sub in ("tmp", "new"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    def one(i: int) -> None:
        tmp = root / "tmp" / f"{i}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(MESSAGE)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, root / "new" / tmp.name)
        fd = os.open(root / "new", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.unlink()

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - start)


def a3mail_store(data_dir: Path, count: int, concurrency: int, group: bool = False) -> float:
    """Messages per second for Store.incoming() + Store.messages.deliver() (or, with
    *group*, Store.group_delivery.deliver(): group commit, the path SMTP takes)."""
    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, gatherResults

    from a3mail.mime import parse_message
    from a3mail.store import Database, Store
    from tests.store.helpers import in_thread
    from tests.support import pg

    schema = pg.fresh_schema("bench")
    store = Store(
        Database(pg.dsn(), min_size=concurrency, max_size=concurrency, schema=schema), data_dir
    )
    result: list[float] = []

    def parse(data: object) -> dict:
        return parse_message(data).to_json()  # type: ignore[arg-type]

    async def run() -> None:
        await store.open()
        await store.domains.add("example.com")
        for n in range(ACCOUNTS):
            await store.accounts.add(f"user{n}@example.com")
        remaining = [count]

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                blob = await store.incoming(MESSAGE)
                rcpt = f"user{remaining[0] % ACCOUNTS}@example.com"
                if group:
                    parsed = await in_thread(parse, blob.path.read_bytes())
                    await store.group_delivery.deliver(blob, [rcpt], parsed=parsed)
                else:
                    await store.messages.deliver(blob, [rcpt], parse=parse)

        start, cpu = time.perf_counter(), time.process_time()
        await gatherResults([Deferred.fromCoroutine(worker()) for _ in range(concurrency)])
        result.append(count / (time.perf_counter() - start))
        result.append((time.process_time() - cpu) * 1000 / count)
        await store.close()

    def go() -> None:
        d = Deferred.fromCoroutine(run())
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
    pg.drop_schema(schema)
    return result[0], result[1]


ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1"))


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model}, {mem:.0f} GiB RAM"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--group", action="store_true", help="group_delivery (group commit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peer = maildir_peer(Path(tmp) / "maildir", args.messages, args.concurrency)
        ours, cpu = a3mail_store(Path(tmp) / "a3mail", args.messages, args.concurrency, args.group)
    print(f"machine: {machine()}")
    print(f"messages: {args.messages} of {len(MESSAGE)} bytes, concurrency {args.concurrency}")
    print(f"maildir floor (fsync file + dir): {peer:8.0f} msgs/s")
    kind = "group_delivery" if args.group else "messages.deliver"
    print(f"a3mail {kind} (fsync + commit): {ours:8.0f} msgs/s")
    print(f"a3mail process CPU per message: {cpu:.2f} ms (load average {os.getloadavg()[0]:.1f})")
    print(f"ratio a3mail/floor: {ours / peer:.2f}")


if __name__ == "__main__":
    main()
