#!/usr/bin/env python3
"""IMAP operation rates with N concurrent clients, a3mail against Dovecot, and idle memory.

    python bench/imap_ops.py [--clients 4] [--messages 1000] [--ops 200] [--idle 1000]
                             [--big 100000] [--dsn postgresql://...] [--no-dovecot]
                             [--pymap PATH]

Starts a3mail's ``imap`` listener (built exactly as the service builds it) on 127.0.0.1 over
a store in a temporary directory (embedded PostgreSQL there, or --dsn in a fresh schema) and,
if Debian's ``dovecot`` is installed (``apt-get install dovecot-imapd``), a Dovecot configured
by this script in a temporary directory (passwd-file, maildir, loopback port, no TLS), and
if pymap (PyPI; best in its own venv, --pymap names its command) is found, pymap's in-memory
``dict`` backend.  All hold the same mailbox of --messages messages.  Clients are Python's
imaplib, each in its own process; each operation runs in --clients processes at once and the
rate is the total number of operations over the slowest client's time.

Operations: login (connect, LOGIN, LOGOUT), select, fetch headers (``BODY.PEEK[HEADER]`` of
the whole mailbox, --ops/10 times per client, messages/s), fetch bodies (``BODY.PEEK[]``,
likewise), store
(``+FLAGS``/``-FLAGS``), search (``SEARCH TEXT``), append.  Then --idle connections in IDLE
and the server's PSS growth per connection (a3mail: this process; Dovecot: all its
processes).  With --big N, also a mailbox ``Big`` of N messages (a3mail: delivered through
the store's group commit; Dovecot: maildir files written into place, indexed by its first
SELECT): one client times its first (cold) SELECT, the median of five warm ones, and the
best of three ``FETCH 1:* (FLAGS)``.  Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER = "bench@bench.example"
PASSWORD = "bench password"  # noqa: S105 - a throwaway account in a temp store
OPERATIONS = ("login", "select", "fetch_headers", "fetch_bodies", "store", "search", "append")


def message(n: int) -> bytes:
    """A message of about 4 KB."""
    head = (
        f"From: Sender {n} <sender{n}@remote.example>\r\nTo: {USER}\r\n"
        f"Subject: message {n}\r\nDate: Mon, 15 Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{n}@remote.example>\r\n\r\n"
    ).encode()
    return head + (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do.\r\n" * 60)


# -- clients (child processes) ----------------------------------------------------------------


def _login(port: int) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(USER, PASSWORD)
    return imap


def _check(result: tuple[str, Any]) -> Any:
    status, data = result
    if status != "OK":
        raise RuntimeError(f"server said {status}: {data!r}")
    return data


def client(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one operation *spec["ops"]* times on *spec["port"]*; return the count and time."""
    port, op, count = spec["port"], spec["op"], spec["ops"]
    if op == "big":
        return big_mailbox_client(port)
    if op == "populate":
        imap = _login(port)
        for n in range(count):
            _check(imap.append("INBOX", "", None, message(n)))
        imap.logout()
        return {"ops": count, "seconds": 0.0}
    started = time.perf_counter()
    done = 0
    if op == "login":
        for _ in range(count):
            _login(port).logout()
            done += 1
        return {"ops": done, "seconds": time.perf_counter() - started}
    imap = _login(port)
    _check(imap.select("INBOX"))
    started = time.perf_counter()
    for i in range(count):
        if op == "select":
            _check(imap.select("INBOX"))
            done += 1
        elif op in ("fetch_headers", "fetch_bodies"):
            item = "(BODY.PEEK[HEADER])" if op == "fetch_headers" else "(BODY.PEEK[])"
            data = _check(imap.fetch("1:*", item))
            done += sum(1 for part in data if isinstance(part, tuple))
        elif op == "store":
            sign = "+" if i % 2 == 0 else "-"
            _check(imap.store(str(1 + i % 50), f"{sign}FLAGS", "(\\Flagged)"))
            done += 1
        elif op == "search":
            _check(imap.search(None, "TEXT", f'"message {i % 100}"'))
            done += 1
        elif op == "append":
            _check(imap.append("INBOX", "", None, message(10_000 + i)))
            done += 1
    seconds = time.perf_counter() - started
    imap.logout()
    return {"ops": done, "seconds": seconds}


def big_mailbox_client(port: int) -> dict[str, float]:
    """SELECT ``Big`` cold, then warm (median of 5), then ``FETCH 1:* (FLAGS)`` (best of 3),
    in milliseconds."""
    imap = _login(port)
    started = time.perf_counter()
    _check(imap.select("Big"))
    cold = time.perf_counter() - started
    warm = []
    for _ in range(5):
        started = time.perf_counter()
        _check(imap.select("Big"))
        warm.append(time.perf_counter() - started)
    fetches = []
    for _ in range(3):
        started = time.perf_counter()
        data = _check(imap.fetch("1:*", "(FLAGS)"))
        fetches.append(time.perf_counter() - started)
    imap.logout()
    warm.sort()
    return {
        "big_select_cold": cold * 1000,
        "big_select_warm": warm[len(warm) // 2] * 1000,
        "big_fetch_flags": min(fetches) * 1000,
        "big_count": len(data),
    }


def run_big_client(port: int) -> dict[str, float]:
    """:func:`big_mailbox_client` in a child process (like the other clients)."""
    done = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps({"port": port, "op": "big", "ops": 1})],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def idle_holder(port: int, count: int) -> None:
    """Open *count* connections in IDLE, print ``ready``, hold them until stdin closes."""
    held = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        for tag, line in ((b"a", f'LOGIN "{USER}" "{PASSWORD}"'), (b"b", "SELECT INBOX")):
            sock.sendall(tag + b" " + line.encode() + b"\r\n")
            while not reader.readline().startswith(tag + b" "):
                pass
        sock.sendall(b"c IDLE\r\n")
        while not reader.readline().startswith(b"+"):
            pass
        held.append((sock, reader))
        if n % 100 == 99:
            print(f"{n + 1} connections idle", file=sys.stderr, flush=True)
    print("ready", flush=True)
    sys.stdin.read()
    for sock, _reader in held:
        sock.close()


# -- memory ------------------------------------------------------------------------------------


def pss_kib(pids: list[int]) -> int:
    """The summed PSS (KiB) of *pids* (from /proc/<pid>/smaps_rollup)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def descendants(root: int) -> list[int]:
    """*root* and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


# -- Dovecot -----------------------------------------------------------------------------------

DOVECOT_CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
default_process_limit = 4000
default_client_limit = 8000
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  client_limit = 9000
}}
protocol imap {{
  mail_max_userip_connections = 4000
}}
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (closed again: a small race, fine for a benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dovecot_password() -> str:
    """The password as Dovecot should store it: argon2id with a3mail's parameters (m=64 MiB,
    t=3, p=1, which are doveadm's defaults), so that logins cost the same; PLAIN if doveadm
    cannot make one."""
    try:
        done = subprocess.run(
            ["doveadm", "pw", "-s", "ARGON2ID", "-p", PASSWORD],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{{PLAIN}}{PASSWORD}"


def start_dovecot(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Configure and start Dovecot in *directory*; returns the process and its port."""
    port = free_port()
    for sub in ("run", "state", "mail", "home"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "passwd").write_text(f"{USER}:{dovecot_password()}\n")
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:  # Dovecot refuses to give mail to root: use nobody
        import pwd

        entry = pwd.getpwnam("nobody")
        uid, gid = entry.pw_uid, entry.pw_gid
        for path in (directory.parent, directory):
            path.chmod(0o755)
        for sub in ("mail", "home"):
            os.chown(directory / sub, uid, gid)
    conf = directory / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(d=directory, uid=uid, gid=gid, port=port))
    process = subprocess.Popen(["dovecot", "-F", "-c", str(conf)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"dovecot did not start; see {directory}/dovecot.log")


# -- driving the clients -----------------------------------------------------------------------


def run_clients(port: int, op: str, clients: int, ops: int) -> dict[str, Any]:
    """*clients* processes each running *op* *ops* times at once; the combined rate."""
    command = [sys.executable, __file__, "--client"]
    processes = [
        subprocess.Popen(
            [*command, json.dumps({"port": port, "op": op, "ops": ops})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"client {op} failed")
        results.append(json.loads(out))
    total = sum(r["ops"] for r in results)
    slowest = max(r["seconds"] for r in results) or 1e-9
    return {"ops": total, "seconds": slowest, "rate": total / slowest}


def idle_memory(port: int, count: int, server_pids: Any) -> float:
    """PSS growth (KiB) per connection held in IDLE; *server_pids* lists the server's pids."""
    before = pss_kib(server_pids())
    holder = subprocess.Popen(
        [sys.executable, __file__, "--idle-holder", json.dumps({"port": port, "count": count})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    if holder.stdout.readline().strip() != "ready":
        raise RuntimeError("the IDLE holder failed")
    time.sleep(1.0)
    after = pss_kib(server_pids())
    holder.stdin.close()
    holder.wait()
    return (after - before) / max(1, count)


def measure(port: int, args: argparse.Namespace, server_pids: Any) -> dict[str, Any]:
    """Every operation, then idle memory, against the server on *port*."""
    results: dict[str, Any] = {}
    for op in OPERATIONS:
        ops = max(1, args.ops // 10) if op.startswith("fetch") else args.ops
        print(f"  {op} x{ops} x{args.clients} clients ...", file=sys.stderr)
        results[op] = run_clients(port, op, args.clients, ops)
    if args.idle:
        print(f"  {args.idle} connections in IDLE ...", file=sys.stderr)
        results["idle_kib"] = idle_memory(port, args.idle, server_pids)
    return results


# -- a3mail (this process) ---------------------------------------------------------------------


async def serve_a3mail(reactor: Any, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Set up the store and the imap listener, then measure with the clients (in threads)."""
    from twisted.internet.threads import deferToThread

    from a3mail.auth.passwords import hash_password
    from a3mail.listeners import PROTOCOL_FACTORIES
    from a3mail.runtime import Runtime
    from a3mail.smtp.delivery import parse_json
    from a3mail.store import Database, Store
    from a3mail.tls import ServerTLS
    from bench.common import bench_config

    config = bench_config(
        args, data_dir, **{"imap.max_connections_per_ip": max(20, args.idle + args.clients * 2)}
    )
    store = Store(Database(args.dsn, schema=args.schema), data_dir, fsync=False)
    await store.open()
    try:
        await store.domains.add("bench.example")
        await store.accounts.add(USER, password_hash=hash_password(PASSWORD))
        print(f"a3mail: delivering {args.messages} messages ...", file=sys.stderr)
        for n in range(args.messages):
            # Parsed at delivery, as SMTP and APPEND do (header size, body tree, envelope).
            await store.messages.deliver(await store.incoming(message(n)), [USER], parse=parse_json)
        tls = ServerTLS.from_config(config.tls, config.hostname)
        runtime = Runtime(config=config, store=store, tls=tls, reactor=reactor)
        port = reactor.listenTCP(0, PROTOCOL_FACTORIES["imap"](runtime), interface="127.0.0.1")
        try:
            number = port.getHost().port
            results: dict[str, Any] = await deferToThread(
                measure, number, args, lambda: [os.getpid()]
            )
            if args.big:
                await fill_big_a3mail(store, args.big)
                print(f"  SELECT / FETCH FLAGS of {args.big} messages ...", file=sys.stderr)
                results.update(await deferToThread(run_big_client, number))
            return results
        finally:
            await port.stopListening()
    finally:
        await store.close()


async def fill_big_a3mail(store: Any, count: int) -> None:
    """Deliver *count* messages into a new mailbox ``Big`` through the store's group commit
    (one parse; a source file per 10,000 links, under the file system's link limit)."""
    from twisted.internet.defer import gatherResults

    from a3mail.smtp.delivery import parse_json

    account = await store.accounts.get(USER)
    await store.mailboxes.create(account.id, "Big")
    print(f"a3mail: delivering {count} messages into Big ...", file=sys.stderr)
    parsed = parse_json(message(0))
    for start in range(0, count, 10_000):
        blob = await store.incoming(message(start))
        for window in range(start, min(count, start + 10_000), 500):
            await gatherResults(
                [
                    store.group_delivery.deliver(
                        blob, [USER], parsed=parsed, mailbox="Big", keep_source=True
                    )
                    for _ in range(window, min(count, start + 10_000, window + 500))
                ]
            )


def fill_big_dovecot(directory: Path, count: int) -> None:
    """Write *count* messages as maildir files of a new folder ``Big`` (Dovecot indexes
    them at the first SELECT)."""
    folder = directory / "mail" / USER / ".Big"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    print(f"dovecot: writing {count} maildir files into Big ...", file=sys.stderr)
    stamp = int(time.time())
    for n in range(count):
        (folder / "cur" / f"{stamp}.M{n}P1.bench:2,").write_bytes(message(n))
    owner = (directory / "mail").stat()
    if os.getuid() == 0 and owner.st_uid != 0:
        for root, dirs, files in os.walk(directory / "mail"):
            for name in dirs + files:
                os.chown(os.path.join(root, name), owner.st_uid, owner.st_gid)


def bench_pymap(args: argparse.Namespace) -> dict[str, Any] | None:
    """The same measurements against pymap's in-memory ``dict`` backend (None if no pymap:
    it is best installed in a venv of its own, ``--pymap /path/to/venv/bin/pymap``)."""
    command = args.pymap or shutil.which("pymap")
    if not command:
        return None
    port = free_port()
    process = subprocess.Popen(
        [command, "--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict",
         "--demo-user", USER, "--demo-password", PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("pymap did not start") from None
                time.sleep(0.2)
        print(f"pymap: appending {args.messages} messages ...", file=sys.stderr)
        run_clients(port, "populate", 1, args.messages)
        return measure(port, args, lambda: descendants(process.pid))
    finally:
        process.terminate()
        process.wait()


def bench_dovecot(args: argparse.Namespace, directory: Path) -> dict[str, Any] | None:
    """The same measurements against a Dovecot configured here (None if not installed)."""
    if args.no_dovecot or shutil.which("dovecot") is None:
        return None
    process, port = start_dovecot(directory)
    try:
        print(f"dovecot: appending {args.messages} messages ...", file=sys.stderr)
        run_clients(port, "populate", 1, args.messages)
        results = measure(port, args, lambda: descendants(process.pid))
        if args.big:
            fill_big_dovecot(directory, args.big)
            print(f"  SELECT / FETCH FLAGS of {args.big} messages ...", file=sys.stderr)
            results.update(run_big_client(port))
        return results
    finally:
        process.terminate()
        process.wait()


# -- report ------------------------------------------------------------------------------------

LABELS = {
    "login": "login + logout (per s)",
    "select": "SELECT INBOX (per s)",
    "fetch_headers": "FETCH 1:* BODY.PEEK[HEADER] (messages/s)",
    "fetch_bodies": "FETCH 1:* BODY.PEEK[] (messages/s)",
    "store": "STORE +/-FLAGS (per s)",
    "search": "SEARCH TEXT (per s)",
    "append": "APPEND (per s)",
}


BIG_LABELS = {
    "big_select_cold": "SELECT of {n} messages, first (ms)",
    "big_select_warm": "SELECT of {n} messages, warm, median of 5 (ms)",
    "big_fetch_flags": "FETCH 1:* (FLAGS) of {n} messages, best of 3 (ms)",
}


def report(
    ours: dict[str, Any], peers: dict[str, dict[str, Any] | None], args: argparse.Namespace
) -> None:
    """Print the Markdown section: a3mail, then each peer with a3mail's ratio to it."""
    from bench.common import machine

    m = machine()
    measured = {name: result for name, result in peers.items() if result is not None}
    head = "| operation | a3mail |" + "".join(f" {n} | a3mail/{n} |" for n in measured)
    lines = [
        f"`python bench/imap_ops.py --clients {args.clients} --messages {args.messages}"
        f" --ops {args.ops} --idle {args.idle} --big {args.big}`,"
        f" {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}. Machine:"
        f" {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}, Python {m['python']}.",
        "",
        head,
        "|---|---|" + "---|---|" * len(measured),
    ]
    for op, label in LABELS.items():
        row = f"| {label} | {ours[op]['rate']:.0f} |"
        for result in measured.values():
            row += f" {result[op]['rate']:.0f} | {ours[op]['rate'] / result[op]['rate']:.2f} |"
        lines.append(row)
    for key, label in BIG_LABELS.items():
        if key not in ours:
            continue
        row = f"| {label.format(n=args.big)} | {ours[key]:.1f} |"
        for result in measured.values():
            if key in result:
                row += f" {result[key]:.1f} | {ours[key] / result[key]:.2f} |"
            else:
                row += " - | - |"
        lines.append(row)
    if "idle_kib" in ours:
        row = f"| PSS per idle connection (KiB) | {ours['idle_kib']:.0f} |"
        row += "".join(f" {result['idle_kib']:.0f} | - |" for result in measured.values())
        lines.append(row)
    skipped = [name for name, result in peers.items() if result is None]
    if skipped:
        lines += ["", f"Not measured (not installed or disabled): {', '.join(skipped)}."]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--messages", type=int, default=1000, help="messages in the mailbox")
    parser.add_argument("--ops", type=int, default=200, help="operations per client")
    parser.add_argument("--idle", type=int, default=1000, help="connections held in IDLE")
    parser.add_argument("--big", type=int, default=0, help="messages in the big mailbox")
    parser.add_argument("--dsn", default="", help="PostgreSQL to use (default: embedded)")
    parser.add_argument("--no-dovecot", action="store_true", help="skip Dovecot")
    parser.add_argument("--pymap", default="", help="the pymap command (default: on PATH)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--idle-holder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return
    if args.idle_holder:
        spec = json.loads(args.idle_holder)
        idle_holder(spec["port"], spec["count"])
        return

    from a3mail.reactor import install_asyncio_reactor

    install_asyncio_reactor()
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    from bench.common import bench_database

    work = Path(tempfile.mkdtemp(prefix="a3mail-bench-imap-"))
    data_dir = work / "a3mail"
    data_dir.mkdir()
    results: dict[str, Any] = {}

    async def run(reactor: Any) -> None:
        results["a3mail"] = await serve_a3mail(reactor, args, data_dir)

    with bench_database(args, data_dir, "bench_imap"):
        try:
            task.react(lambda reactor: Deferred.fromCoroutine(run(reactor)))
        except SystemExit as done:
            if done.code:
                raise
    try:
        peers = {"Dovecot": bench_dovecot(args, work / "dovecot"), "pymap": bench_pymap(args)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results["a3mail"], peers, args)


if __name__ == "__main__":
    main()
