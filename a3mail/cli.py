"""The ``a3mail`` admin command: domains, users, aliases, API keys, database migrations.

It works on the same data directory or configuration file as the server, also while the
server runs (the embedded PostgreSQL is shared, and stopped only by its last user).
Errors print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, TextIO

from a3mail.store.db import StoreError

Command = Callable[[Any, argparse.Namespace, TextIO], Awaitable[None]]


class CommandError(Exception):
    """A user error in a command: printed as one line, exit status 1."""


# -- argument parsing -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="a3mail", description="Administer an a3mail server.")
    parser.add_argument("-c", "--config", help="configuration file (as given to twistd)")
    parser.add_argument("-d", "--data-dir", help="data directory (overrides the file)")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    domain = groups.add_parser("domain", help="mail domains").add_subparsers(
        dest="action", required=True
    )
    p = domain.add_parser("add", help="add a domain")
    p.add_argument("name")
    p.add_argument("--max-users", type=int)
    p.add_argument("--max-quota", help="largest quota a user may have (e.g. 10G)")
    p.add_argument("--disabled", action="store_true", help="add it disabled")
    p.add_argument("--tempmail", action="store_true", help="offer temp addresses in it")
    p.set_defaults(run=domain_add)
    p = domain.add_parser("tempmail", help="turn temp mail on or off for a domain")
    p.add_argument("name")
    p.add_argument("state", choices=("on", "off"))
    p.set_defaults(run=domain_tempmail)
    domain.add_parser("list", help="list domains").set_defaults(run=domain_list)
    p = domain.add_parser("delete", help="delete a domain")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="also delete its users and their mail")
    p.set_defaults(run=domain_delete)

    user = groups.add_parser("user", help="mail users").add_subparsers(dest="action", required=True)
    p = user.add_parser("add", help="add a user (password prompted, or --password-stdin)")
    p.add_argument("address")
    p.add_argument("--quota", default=None, help="quota, e.g. 2G (default from the config)")
    p.add_argument("--role", choices=["user", "admin"], default="user")
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--no-password", action="store_true", help="create without a password")
    p.set_defaults(run=user_add)
    p = user.add_parser("list", help="list users")
    p.add_argument("--domain")
    p.add_argument("--search")
    p.set_defaults(run=user_list)
    p = user.add_parser("passwd", help="set a user's password")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(run=user_passwd)
    p = user.add_parser("delete", help="delete a user and all their mail")
    p.add_argument("address")
    p.set_defaults(run=user_delete)
    p = user.add_parser("quota", help="show or set a user's quota (0 = unlimited)")
    p.add_argument("address")
    p.add_argument("size", nargs="?")
    p.set_defaults(run=user_quota)

    alias = groups.add_parser("alias", help="aliases").add_subparsers(dest="action", required=True)
    p = alias.add_parser(
        "add", help="deliver mail for ADDRESS also to TARGET (ADDRESS @domain: a catch-all)"
    )
    p.add_argument("address")
    p.add_argument("target")
    p.set_defaults(run=alias_add)
    p = alias.add_parser("list", help="list aliases")
    p.add_argument("--domain")
    p.set_defaults(run=alias_list)
    p = alias.add_parser("delete", help="remove an alias (or one of its targets)")
    p.add_argument("address")
    p.add_argument("target", nargs="?")
    p.set_defaults(run=alias_delete)

    key = groups.add_parser("api-key", help="API keys").add_subparsers(dest="action", required=True)
    p = key.add_parser("create", help="create a key; prints it once")
    p.add_argument("--user", required=True, help="the account the key acts for")
    p.add_argument("--name", default="")
    p.add_argument(
        "--permissions", default="read", help="comma-separated: read, write, admin (default read)"
    )
    p.add_argument("--expires", help="expiry date or time, e.g. 2026-12-31 (UTC)")
    p.set_defaults(run=key_create)
    p = key.add_parser("list", help="list keys")
    p.add_argument("--user")
    p.add_argument("--all", action="store_true", help="include revoked keys")
    p.set_defaults(run=key_list)
    p = key.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("key_id")
    p.set_defaults(run=key_revoke)

    db = groups.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    db.add_parser("migrate", help="apply pending migrations").set_defaults(run=db_migrate)
    db.add_parser("status", help="show applied and pending migrations").set_defaults(run=db_status)

    queue = groups.add_parser("queue", help="the outbound queue").add_subparsers(
        dest="action", required=True
    )
    p = queue.add_parser("list", help="list queue entries")
    p.add_argument("--queue", choices=("all", "outgoing", "retry", "bounce"), default="all")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(run=queue_list)
    p = queue.add_parser("show", help="show one entry and its delivery results")
    p.add_argument("id", type=int)
    p.set_defaults(run=queue_show)
    p = queue.add_parser("retry", help="make entries due now (also failed ones)")
    p.add_argument("ids", type=int, nargs="+")
    p.set_defaults(run=queue_retry)
    p = queue.add_parser("delete", help="delete entries (not those being sent)")
    p.add_argument("ids", type=int, nargs="+")
    p.set_defaults(run=queue_delete)
    queue.add_parser("flush", help="make every waiting entry due now").set_defaults(run=queue_flush)

    dkim = groups.add_parser("dkim", help="DKIM signing keys").add_subparsers(
        dest="action", required=True
    )
    p = dkim.add_parser("generate", help="create a key and print its DNS TXT record")
    p.add_argument("--domain", required=True)
    p.add_argument("--selector", default="a3mail")
    p.add_argument("--algorithm", choices=("rsa", "ed25519"), default="rsa")
    p.set_defaults(run=dkim_generate)
    return parser


# -- helpers --------------------------------------------------------------------------------


def _size(text: str | None, what: str) -> int | None:
    from a3mail.config import parse_size

    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as e:
        raise CommandError(f"{what}: {e}") from None


def _read_password(args: argparse.Namespace, out: TextIO) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the passwords do not match")
    else:
        raise CommandError("no terminal to ask for a password: use --password-stdin")
    if not password:
        raise CommandError("the password must not be empty")
    return password


def _hash(password: str) -> str:
    from a3mail.auth.passwords import hash_password

    try:
        return hash_password(password)
    except ValueError as e:
        raise CommandError(str(e)) from None


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(23, 59, 59), UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--expires: not a date: {text!r} (use e.g. 2026-12-31)") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed <= datetime.now(UTC):
        raise CommandError("--expires: the date is in the past")
    return parsed


def _bytes(n: int) -> str:
    if n == 0:
        return "0"
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


# -- commands ---------------------------------------------------------------------------------


async def domain_add(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail domain add NAME"""
    domain = await store.domains.add(
        args.name,
        enabled=not args.disabled,
        max_users=args.max_users,
        max_quota=_size(args.max_quota, "--max-quota"),
    )
    await store.audit.record("domain.create", actor="cli", target=domain.name)
    if args.tempmail:
        await store.tempmail.set_domain(domain.name, True)
    out.write(f"domain {domain.name} added\n")


async def domain_tempmail(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail domain tempmail NAME on|off"""
    name = args.name.lower()
    await store.tempmail.set_domain(name, args.state == "on")
    await store.audit.record(
        "domain.update", actor="cli", target=name, details={"tempmail": args.state}
    )
    out.write(f"temp mail {args.state} for {name}\n")


async def domain_list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail domain list"""
    for d in await store.domains.list():
        state = "enabled" if d.enabled else "disabled"
        out.write(f"{d.name}\t{state}\tusers={d.users_count}\n")


async def domain_delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail domain delete NAME [--force]"""
    domain = await store.domains.delete(args.name.lower(), force=args.force)
    await store.audit.record("domain.delete", actor="cli", target=domain.name, severity="warning")
    out.write(f"domain {domain.name} deleted\n")


async def user_add(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail user add ADDRESS"""
    quota = _size(args.quota, "--quota")
    if quota is None:
        quota = args.default_quota
    password_hash = None if args.no_password else _hash(_read_password(args, out))
    account = await store.accounts.add(
        args.address,
        password_hash=password_hash,
        quota_bytes=quota,
        role=args.role,
        display_name=args.name,
    )
    await store.audit.record("user.create", actor="cli", target=account.address)
    out.write(f"user {account.address} added\n")


async def user_list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail user list"""
    offset = 0
    while True:
        page, total = await store.accounts.list(
            domain=args.domain, search=args.search, limit=500, offset=offset
        )
        for a in page:
            quota = _bytes(a.quota_bytes) if a.quota_bytes else "unlimited"
            state = "enabled" if a.enabled else "disabled"
            out.write(
                f"{a.address}\t{a.role}\t{state}\tused={_bytes(a.used_bytes)}"
                f"\tquota={quota}\tmessages={a.message_count}\n"
            )
        offset += len(page)
        if not page or offset >= total:
            break


async def user_passwd(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail user passwd ADDRESS"""
    account = await store.accounts.get(args.address)
    await store.accounts.update(account.id, password_hash=_hash(_read_password(args, out)))
    await store.audit.record("user.password", actor="cli", target=account.address)
    out.write(f"password of {account.address} changed\n")


async def user_delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail user delete ADDRESS"""
    account = await store.accounts.delete(args.address)
    await store.audit.record("user.delete", actor="cli", target=account.address, severity="warning")
    out.write(f"user {account.address} deleted with {account.message_count} messages\n")


async def user_quota(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail user quota ADDRESS [SIZE]"""
    size = _size(args.size, "size")
    account = await store.accounts.get(args.address)
    if size is not None:
        account = await store.accounts.set_quota(account.id, size)
        await store.audit.record(
            "user.quota", actor="cli", target=account.address, details={"quota": size}
        )
    quota = _bytes(account.quota_bytes) if account.quota_bytes else "unlimited"
    out.write(f"{account.address}\tquota={quota}\tused={_bytes(account.used_bytes)}\n")


async def alias_add(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail alias add ADDRESS TARGET"""
    await store.accounts.add_alias(args.address, args.target)
    out.write(f"alias {args.address.lower()} -> {args.target} added\n")


async def alias_list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail alias list"""
    for address, target in await store.accounts.aliases(args.domain):
        out.write(f"{address}\t{target}\n")


async def alias_delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail alias delete ADDRESS [TARGET]"""
    removed = await store.accounts.remove_alias(args.address, args.target)
    if not removed:
        raise CommandError(f"no such alias: {args.address}")
    out.write(f"{removed} alias entries removed\n")


async def key_create(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail api-key create --user ADDRESS"""
    from a3mail.auth import apikeys

    permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
    bad = [p for p in permissions if p not in ("read", "write", "admin")]
    if bad or not permissions:
        raise CommandError("--permissions: use some of read, write, admin")
    expires = _expiry(args.expires)
    account = await store.accounts.get(args.user)
    new, record = await apikeys.issue(
        store, account_id=account.id, name=args.name, permissions=permissions, expires_at=expires
    )
    await store.audit.record(
        "api_key.create",
        actor="cli",
        target=record.key_id,
        details={"user": account.address, "permissions": permissions},
    )
    out.write(f"Key ID: {record.key_id}\nAPI Key: {new.key}\nSecret: {new.secret}\n")
    out.write("Store these now: they are not shown again.\n")


async def key_list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail api-key list"""
    account_id = (await store.accounts.get(args.user)).id if args.user else None
    for k in await store.keys.list(account_id, include_revoked=args.all):
        expires = k.expires_at.isoformat() if k.expires_at else "never"
        state = "revoked" if k.revoked_at else "active"
        out.write(
            f"{k.key_id}\t{k.key_prefix}...\t{k.account_address or '-'}\t"
            f"{','.join(k.permissions)}\t{state}\texpires={expires}\t{k.name}\n"
        )


async def key_revoke(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail api-key revoke KEY_ID"""
    record = await store.keys.revoke(args.key_id)
    await store.audit.record(
        "api_key.revoke", actor="cli", target=record.key_id, severity="warning"
    )
    out.write(f"key {record.key_id} revoked\n")


async def db_migrate(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail db migrate"""
    for m in await store.migrate():
        out.write(f"applied {m.version:04d}_{m.name}\n")
    status = await store.migration_status()
    out.write(f"schema version {status.current}, up to date\n")


async def db_status(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    """a3mail db status"""
    status = await store.migration_status()
    out.write(f"schema version {status.current}\n")
    for m in status.pending:
        out.write(f"pending: {m.version:04d}_{m.name}\n")
    if not status.pending:
        out.write("no pending migrations\n")


# -- running ----------------------------------------------------------------------------------


async def queue_list(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    entries, total = await store.queue_admin.entries(queue=args.queue, limit=args.limit)
    for e in entries:
        when = e.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S")
        out.write(
            f"{e.id}\t{e.state}\t{e.attempts}\t{when}\t<{e.sender}>\t"
            f"{','.join(e.recipients)}\t{e.last_error or ''}\n"
        )
    out.write(f"{total} entries\n")


async def queue_show(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    from a3mail.store.records import NotFound

    try:
        e = await store.queue.get(args.id)
    except NotFound as exc:
        raise CommandError(str(exc)) from None
    out.write(
        f"id: {e.id}\nstate: {e.state}\nsender: <{e.sender}>\ndomain: {e.domain}\n"
        f"recipients: {', '.join(e.recipients)}\nattempts: {e.attempts}\n"
        f"next attempt: {e.next_attempt_at.isoformat()}\nqueued: {e.created_at.isoformat()}\n"
        f"size: {e.size - e.skip_bytes}\nlast error: {e.last_error or ''}\n"
    )
    for r in await store.outbound.results(e.id):
        out.write(
            f"{r['created_at'].isoformat()}\t{r['recipient']}\t{r['status']}\t"
            f"{r['code']} {r['reply']}\t{r['remote_mta']}\n"
        )


async def queue_retry(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    count = await store.queue_admin.retry(args.ids, include_failed=True)
    out.write(f"{count} entries due now\n")


async def queue_delete(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    count = await store.outbound.delete(args.ids)
    out.write(f"{count} entries deleted\n")


async def queue_flush(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    count = await store.queue_admin.retry()
    out.write(f"{count} entries due now\n")


async def dkim_generate(store: Any, args: argparse.Namespace, out: TextIO) -> None:
    from a3mail.outbound.dkim import generate_key, key_dir

    domain = args.domain.lower().rstrip(".")
    if not await store.domains.is_local(domain):
        raise CommandError(f"not a local domain: {domain}")
    data_dir = store.blobs.data_dir
    if (key_dir(data_dir, domain) / f"{args.selector}.key").exists():
        raise CommandError(f"a key {args.selector} exists for {domain}")
    record = generate_key(data_dir, domain, args.selector, args.algorithm)
    out.write(f'{args.selector}._domainkey.{domain}. IN TXT "{record}"\n')


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Parse *argv*, run the command against the store, return the exit status."""
    args = build_parser().parse_args(argv)
    from a3mail.reactor import ReactorError, install_asyncio_reactor

    try:
        install_asyncio_reactor()
    except ReactorError as e:
        err.write(f"a3mail: {e}\n")
        return 1
    from twisted.internet import reactor

    from a3mail.config import ConfigError, load_config
    from a3mail.tap import StartError, open_store

    try:
        config = load_config(args.config, data_dir=args.data_dir)
        args.default_quota = config.store.default_quota
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        migrate = args.group != "db"  # `db status` must see pending migrations
        embedded, store = open_store(config, reactor, server=False, migrate=migrate)
    except ConfigError as e:
        err.write(f"a3mail: {e}\n")
        return 1
    except StartError as e:
        err.write(f"{e.code}\n")
        return 1
    except OSError as e:
        err.write(f"a3mail: data_dir: {e}\n")
        return 1
    try:
        return _run_command(reactor, store, args, out, err)
    finally:
        if embedded is not None:
            embedded.stop()


def _run_command(
    reactor: Any, store: Any, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    loop = reactor._asyncioEventloop
    status = [1]

    async def main() -> None:
        try:
            await store.open(migrate=False, listen=False)
            try:
                await args.run(store, args, out)
                status[0] = 0
            finally:
                await store.close()
        except (CommandError, StoreError, ValueError) as e:
            err.write(f"a3mail: {e}\n")
        finally:
            reactor.stop()

    from twisted.internet.defer import Deferred

    def start() -> None:
        Deferred.fromCoroutine(main()).addErrback(_crash, err, reactor)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    loop.run_until_complete(loop.shutdown_asyncgens())
    return status[0]


def _crash(failure: Any, err: TextIO, reactor: Any) -> None:
    err.write(f"a3mail: unexpected error: {failure.getErrorMessage()}\n")
    if reactor.running:
        reactor.stop()


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
