"""The ``manhole`` listener: a Python prompt inside the running a3mail, over SSH.

Off by default (``[listeners] manhole = ""``).  When configured it must listen on a
loopback address (or a UNIX socket): :func:`check_manhole` refuses anything else at start.
Logins are by public key only, from the ``manhole.authorized_keys`` file (OpenSSH format,
re-read at each login; any user name); there is no password authentication.  The SSH host
key is generated on first use and kept in ``<data_dir>/manhole/host_key`` (mode 0600).

Each session's namespace holds ``runtime``, ``store``, ``config`` (at login), ``control``
(reload/stop/restart), ``services`` (the a3mail service tree), ``sessions`` (the live
sessions registry), ``metrics`` (a3mail.ops.metrics, if installed), ``reactor`` and
``reload()`` (reloads the configuration; the prompt shows the report when it is done).
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch import manhole, manhole_ssh
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker, readAuthorizedKeyFile
from twisted.conch.insults import insults
from twisted.conch.ssh import keys
from twisted.cred import portal
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from zope.interface import implementer

from a3mail.config import Config
from a3mail.logs import get_logger
from a3mail.runtime import Runtime

log = get_logger(__name__)

HOST_KEY_NAME = "host_key"


class ManholeConfigError(ValueError):
    """The manhole is configured in a way a3mail refuses (one line, key first)."""


def check_manhole(config: Config) -> None:
    """Refuse a configured manhole that is not on loopback or has no authorized_keys.

    @raise ManholeConfigError: naming the key at fault.
    """
    description = config.listeners.get("manhole")
    if not description:
        return
    interface = listening_interface(description)
    if interface is not None and not is_loopback(interface):
        where = interface or "every interface"
        raise ManholeConfigError(
            f"listeners.manhole: the manhole must listen on a loopback address"
            f" (e.g. interface=127.0.0.1), not on {where}"
        )
    if config.manhole.authorized_keys is None:
        raise ManholeConfigError(
            "manhole.authorized_keys: must be set when the manhole listener is on"
            " (public-key logins only)"
        )


def listening_interface(description: str) -> str | None:
    """The interface a TCP endpoint string listens on ("" = all); None for UNIX sockets."""
    reactor = MemoryReactor()
    endpoint = serverFromString(reactor, description)
    endpoint.listen(Factory.forProtocol(Protocol))
    if reactor.unixServers:
        return None
    if reactor.tcpServers:
        return str(reactor.tcpServers[0][3])
    return ""


def is_loopback(interface: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip("[]")).is_loopback
    except ValueError:
        return False


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys allowed to log in: an OpenSSH authorized_keys file, read at each login."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def getAuthorizedKeys(self, avatarId: bytes) -> list[keys.Key]:
        """Every key in the file, whatever the user name (none if it cannot be read)."""
        try:
            with open(self.path, "rb") as f:
                return list(readAuthorizedKeyFile(f))
        except OSError as e:
            log.warn("manhole: cannot read {path}: {error}", path=str(self.path), error=str(e))
            return []


def host_key(data_dir: Path) -> keys.Key:
    """The manhole's SSH host key, generated (Ed25519, mode 0600) on first use."""
    path = data_dir / "manhole" / HOST_KEY_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = keys.Key(ed25519.Ed25519PrivateKey.generate())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it meanwhile
            return keys.Key.fromFile(str(path))
        with os.fdopen(fd, "wb") as f:
            f.write(key.toString("openssh"))
        log.info("manhole: new SSH host key in {path}", path=str(path))
        return key
    return keys.Key.fromFile(str(path))


def namespace(runtime: Runtime) -> dict[str, Any]:
    """What a manhole session starts with (see the module docstring)."""
    control = runtime.control
    try:
        metrics: Any = importlib.import_module("a3mail.ops.metrics")
    except ImportError:
        metrics = None
    return {
        "runtime": runtime,
        "store": runtime.store,
        "config": runtime.config,
        "control": control,
        "services": getattr(control, "service", None),
        "sessions": runtime.sessions,
        "metrics": metrics,
        "reactor": runtime.reactor,
        "reload": lambda: Deferred.fromCoroutine(control.reload()),
    }


class ManholeSession(manhole_ssh.TerminalSession):
    """Twisted's terminal session, which also copes with a client that sends end-of-file
    (input piped to ``ssh -tt``), resizes its window, or asks for no terminal."""

    width, height = 80, 24
    _proto: Any = None

    def openShell(self, proto: Any) -> None:
        """Start the Python prompt on this channel."""
        self._proto = proto
        super().openShell(proto)

    def windowChanged(self, newWindowSize: Any) -> None:
        """The client's window changed size: remember it (the prompt keeps its layout)."""
        self.height, self.width = newWindowSize[:2]

    def eofReceived(self) -> None:
        """The client has no more input: end the session once the output is sent."""
        if self._proto is not None:
            self._proto.loseConnection()


def build_manhole(runtime: Runtime) -> manhole_ssh.ConchFactory:
    """The factory of the ``manhole`` listener (public-key SSH, Python prompt)."""
    check_manhole(runtime.config)
    authorized = runtime.config.manhole.authorized_keys
    assert authorized is not None  # checked above

    realm = manhole_ssh.TerminalRealm()
    realm.sessionFactory = ManholeSession

    def chained_protocol() -> insults.ServerProtocol:
        return insults.ServerProtocol(manhole.ColoredManhole, namespace(runtime))

    realm.chainedProtocolFactory = chained_protocol  # type: ignore[assignment]
    checker = SSHPublicKeyChecker(LiveAuthorizedKeys(runtime, authorized))
    factory = manhole_ssh.ConchFactory(portal.Portal(realm, [checker]))  # type: ignore[arg-type]
    key = host_key(runtime.config.data_dir)
    factory.publicKeys = {key.sshType(): key.public()}  # type: ignore[dict-item]
    factory.privateKeys = {key.sshType(): key}  # type: ignore[dict-item]
    factory.noisy = False
    return factory


class LiveAuthorizedKeys(AuthorizedKeysFile):
    """The authorized_keys file named by the current ``manhole.authorized_keys`` (a reload
    that changes the key takes effect at the next login)."""

    def __init__(self, runtime: Runtime, path: Path) -> None:
        super().__init__(path)
        self.runtime = runtime

    def getAuthorizedKeys(self, avatarId: bytes) -> list[keys.Key]:
        """The keys of the file configured now."""
        configured = self.runtime.config.manhole.authorized_keys
        if configured is not None:
            self.path = configured
        return super().getAuthorizedKeys(avatarId)
