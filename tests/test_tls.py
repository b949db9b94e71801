"""Tests for a3mail.tls: the self-signed pair, ServerTLS, implicit TLS and STARTTLS."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLContextFactory,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.threads import deferToThread
from twisted.protocols.basic import LineReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from a3mail.config import TLSConfig
from a3mail.tls import ServerTLS, TLSConfigError, ensure_self_signed, wrap_server_factory

HOSTNAME = "mail.example.org"


def make_pair(directory: Path, hostname: str = HOSTNAME) -> tuple[Path, Path]:
    """Generate a self-signed pair in C{directory}; return (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    ensure_self_signed(cert, key, hostname)
    return cert, key


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def alt_names(cert: x509.Certificate) -> tuple[list[str], list[Any]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


class SelfSignedTests(TestCase):
    """ensure_self_signed()."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp()) / "data" / "tls"
        self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"

    def test_generates_files_with_modes(self) -> None:
        self.assertTrue(ensure_self_signed(self.cert, self.key, HOSTNAME))
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.cert).st_mode), 0o644)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["cert.pem", "key.pem"])

    def test_certificate_contents(self) -> None:
        ensure_self_signed(self.cert, self.key, HOSTNAME)
        cert = load_cert(self.cert)
        dns, ips = alt_names(cert)
        self.assertEqual(dns, [HOSTNAME, "localhost"])
        self.assertEqual(ips, [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")])
        self.assertEqual(cert.subject, cert.issuer)
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        self.assertEqual(cn[0].value, HOSTNAME)
        lifetime = cert.not_valid_after_utc - datetime.now(UTC)
        self.assertGreater(lifetime, timedelta(days=3600))
        self.assertLess(lifetime, timedelta(days=3700))
        self.assertLessEqual(cert.not_valid_before_utc, datetime.now(UTC))
        self.assertGreater(cert.serial_number, 2**64)

    def test_serials_are_random(self) -> None:
        other = Path(self.mktemp())
        make_pair(self.dir)
        make_pair(other)
        self.assertNotEqual(
            load_cert(self.cert).serial_number, load_cert(other / "cert.pem").serial_number
        )

    def test_second_call_keeps_files(self) -> None:
        ensure_self_signed(self.cert, self.key, HOSTNAME)
        before = self.cert.read_bytes(), self.key.read_bytes()
        self.assertFalse(ensure_self_signed(self.cert, self.key, "other.example"))
        self.assertEqual((self.cert.read_bytes(), self.key.read_bytes()), before)

    def test_missing_key_regenerates_both(self) -> None:
        ensure_self_signed(self.cert, self.key, HOSTNAME)
        old_cert = self.cert.read_bytes()
        self.key.unlink()
        self.assertTrue(ensure_self_signed(self.cert, self.key, HOSTNAME))
        self.assertNotEqual(self.cert.read_bytes(), old_cert)
        ServerTLS(self.cert, self.key).load()  # the new pair matches

    def test_existing_directory_mode_untouched(self) -> None:
        self.dir.mkdir(parents=True)
        os.chmod(self.dir, 0o750)  # noqa: S103 - a pre-existing, non-private directory
        ensure_self_signed(self.cert, self.key, HOSTNAME)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o750)

    def test_ip_hostname(self) -> None:
        ensure_self_signed(self.cert, self.key, "192.0.2.7")
        dns, ips = alt_names(load_cert(self.cert))
        self.assertEqual(dns, ["localhost"])
        self.assertIn(ipaddress.ip_address("192.0.2.7"), ips)

    def test_localhost_not_repeated(self) -> None:
        ensure_self_signed(self.cert, self.key, "localhost")
        dns, _ = alt_names(load_cert(self.cert))
        self.assertEqual(dns, ["localhost"])


class LoadTests(TestCase):
    """ServerTLS.load() and its errors."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.cert, self.key = make_pair(self.dir)

    def assertTLSError(self, tls: ServerTLS, key: str, *fragments: str) -> TLSConfigError:
        error = self.assertRaises(TLSConfigError, tls.load)
        self.assertEqual(error.key, key)
        text = str(error)
        self.assertTrue(text.startswith(key + ": "), text)
        self.assertNotIn("\n", text)
        for fragment in fragments:
            self.assertIn(fragment, text)
        return error

    def test_provides_interfaces(self) -> None:
        tls = ServerTLS(self.cert, self.key)
        tls.load()
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, tls))
        self.assertTrue(verifyObject(IOpenSSLContextFactory, tls))
        self.assertIsInstance(tls.getContext(), SSL.Context)
        self.assertIsInstance(tls.serverConnectionForTLS(None), SSL.Connection)  # type: ignore[arg-type]

    def test_not_loaded(self) -> None:
        self.assertRaises(RuntimeError, ServerTLS(self.cert, self.key).getContext)

    def test_missing_certificate(self) -> None:
        missing = self.dir / "nope.pem"
        self.assertTLSError(
            ServerTLS(missing, self.key),
            "tls.certificate",
            f"cannot read {missing}: [Errno 2] No such file or directory",
        )

    def test_missing_key(self) -> None:
        missing = self.dir / "nope.pem"
        self.assertTLSError(
            ServerTLS(self.cert, missing), "tls.private_key", f"cannot read {missing}"
        )

    def test_unreadable_key(self) -> None:
        unreadable = self.cert / "key.pem"  # a path below a regular file
        self.assertTLSError(ServerTLS(self.cert, unreadable), "tls.private_key", "Not a directory")

    def test_directory(self) -> None:
        self.assertTLSError(ServerTLS(self.dir, self.key), "tls.certificate", "cannot read")

    def test_garbage_certificate(self) -> None:
        self.assertTLSError(
            ServerTLS(self.key, self.key), "tls.certificate", "no PEM certificate found"
        )

    def test_garbage_key(self) -> None:
        self.assertTLSError(
            ServerTLS(self.cert, self.cert), "tls.private_key", "no usable PEM private key"
        )

    def test_mismatched_key(self) -> None:
        _, other_key = make_pair(Path(self.mktemp()))
        self.assertTLSError(
            ServerTLS(self.cert, other_key),
            "tls.private_key",
            f"key {other_key} does not match certificate {self.cert}",
        )

    def test_encrypted_key(self) -> None:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        encrypted = self.dir / "encrypted.pem"
        encrypted.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        self.assertTLSError(ServerTLS(self.cert, encrypted), "tls.private_key", "passphrase")

    def test_chain_file(self) -> None:
        """A certificate file may carry the chain after the leaf."""
        chain = self.dir / "chain.pem"
        other_cert, _ = make_pair(Path(self.mktemp()))
        chain.write_bytes(self.cert.read_bytes() + other_cert.read_bytes())
        ServerTLS(chain, self.key).load()

    def test_minimum_tls_12(self) -> None:
        tls = ServerTLS(self.cert, self.key)
        tls.load()
        self.assertEqual(_handshake_in_memory(tls, SSL.TLS1_2_VERSION), "TLSv1.2")
        self.assertEqual(_handshake_in_memory(tls, SSL.TLS1_3_VERSION), "TLSv1.3")
        error = self.assertRaises(SSL.Error, _handshake_in_memory, tls, SSL.TLS1_1_VERSION)
        self.assertIn("unsupported protocol", str(error))

    def test_from_config_generates(self) -> None:
        tls_dir = Path(self.mktemp()) / "tls"
        config = TLSConfig(tls_dir / "cert.pem", tls_dir / "key.pem", generated=True)
        tls = ServerTLS.from_config(config, HOSTNAME)
        self.assertIsInstance(tls.getContext(), SSL.Context)
        self.assertEqual(alt_names(load_cert(tls_dir / "cert.pem"))[0][0], HOSTNAME)

    def test_from_config_does_not_generate_configured_files(self) -> None:
        tls_dir = Path(self.mktemp())
        config = TLSConfig(tls_dir / "cert.pem", tls_dir / "key.pem", generated=False)
        self.assertRaises(TLSConfigError, ServerTLS.from_config, config, HOSTNAME)
        self.assertFalse(tls_dir.exists())


def _handshake_in_memory(tls: ServerTLS, max_version: int) -> str:
    """Handshake a pyOpenSSL client (TLS <= max_version) with C{tls} through memory BIOs."""
    server = tls.serverConnectionForTLS(None)  # type: ignore[arg-type]
    server.set_accept_state()
    client_context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    client_context.set_min_proto_version(SSL.TLS1_VERSION)
    client_context.set_max_proto_version(max_version)
    client_context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    client = SSL.Connection(client_context, None)
    client.set_connect_state()
    for _ in range(10):
        for this, other in ((client, server), (server, client)):
            with contextlib.suppress(SSL.WantReadError):
                this.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(this.bio_read(65536))
    version = server.get_protocol_version_name()
    assert isinstance(version, str)
    return version


# -- real sockets ------------------------------------------------------------------


class Echo(Protocol):
    """Server side: echo bytes back; report connection loss to the factory."""

    def connectionMade(self) -> None:
        self.factory.opened.append(self)  # type: ignore[attr-defined]
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)


class StartTLSEcho(LineReceiver, Echo):
    """Server side of a STARTTLS exchange: C{STARTTLS} -> C{GO} + TLS; other lines echoed."""

    def lineReceived(self, line: bytes) -> None:
        if line == b"STARTTLS":
            self.sendLine(b"GO")
            self.transport.startTLS(self.factory.tls)  # type: ignore[union-attr, attr-defined]
        else:
            self.sendLine(line)


@implementer(IHandshakeListener)
class Client(Protocol):
    """A client that records echoed bytes and the peer certificate."""

    def __init__(self) -> None:
        self.received = b""
        self.waiting: list[tuple[bytes, Deferred[None]]] = []
        self.handshake: Deferred[x509.Certificate] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def handshakeCompleted(self) -> None:
        peer = self.transport.getPeerCertificate()  # type: ignore[union-attr]
        self.handshake.callback(peer.to_cryptography())

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        for expected, waiter in list(self.waiting):
            if self.received.endswith(expected):
                self.waiting.remove((expected, waiter))
                waiter.callback(None)

    def roundtrip(self, data: bytes) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self.waiting.append((data, waiter))
        self.transport.write(data)  # type: ignore[union-attr]
        return waiter

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)


class StartTLSClient(LineReceiver):
    """Client side of the STARTTLS exchange; C{done} fires with the peer certificate."""

    def __init__(self, options: object) -> None:
        self.options = options
        self.done: Deferred[x509.Certificate] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.sendLine(b"STARTTLS")

    def lineReceived(self, line: bytes) -> None:
        if line == b"GO":
            self.transport.startTLS(self.options)  # type: ignore[union-attr]
            self.sendLine(b"ping over tls")
        elif line == b"ping over tls":
            peer = self.transport.getPeerCertificate()  # type: ignore[union-attr]
            self.done.callback(peer.to_cryptography())

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)


class SocketTests(TestCase):
    """TLS over real loopback sockets, with Twisted and stdlib clients."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.cert, self.key = make_pair(self.dir / "a")
        self.tls = ServerTLS(self.cert, self.key)
        self.tls.load()

    def listen(self, protocol: type[Protocol], tls: bool = True) -> int:
        factory = Factory.forProtocol(protocol)
        factory.opened = []  # type: ignore[attr-defined]
        factory.tls = self.tls  # type: ignore[attr-defined]
        wrapped: Any = wrap_server_factory(factory, self.tls) if tls else factory
        port = reactor.listenTCP(0, wrapped, interface="127.0.0.1")  # type: ignore[attr-defined]

        async def close() -> None:
            await maybeDeferred(port.stopListening)
            for server in factory.opened:  # type: ignore[attr-defined]
                server.transport.loseConnection()
                await server.lost

        self.addCleanup(lambda: Deferred.fromCoroutine(close()))
        return int(port.getHost().port)  # type: ignore[attr-defined]

    def options(self, cert: Path, hostname: str = HOSTNAME) -> Any:
        root = Certificate.loadPEM(cert.read_bytes())
        return optionsForClientTLS(hostname, trustRoot=root)

    async def connect(self, port: int, cert: Path) -> Client:
        endpoint = wrapClientTLS(self.options(cert), TCP4ClientEndpoint(reactor, "127.0.0.1", port))
        client = await connectProtocol(endpoint, Client())
        self.addCleanup(self.disconnect, client)
        return client

    def disconnect(self, client: Client | StartTLSClient) -> Deferred[None]:
        client.transport.loseConnection()  # type: ignore[union-attr]
        return client.lost

    def test_wrap_server_factory(self) -> None:
        factory = wrap_server_factory(Factory.forProtocol(Echo), self.tls)
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        self.assertEqual(self.flushWarnings(), [])

    async def test_implicit_tls(self) -> None:
        port = self.listen(Echo)
        client = await self.connect(port, self.cert)
        peer = await client.handshake
        self.assertEqual(peer.serial_number, load_cert(self.cert).serial_number)
        await client.roundtrip(b"hello")

    async def test_starttls(self) -> None:
        port = self.listen(StartTLSEcho, tls=False)
        client = StartTLSClient(self.options(self.cert))
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        self.addCleanup(self.disconnect, client)
        peer = await client.done
        self.assertEqual(peer.serial_number, load_cert(self.cert).serial_number)

    async def test_stdlib_client(self) -> None:
        """Python's ssl module (smtplib, imaplib...) verifies the certificate by name."""
        port = self.listen(Echo)

        def talk() -> tuple[str | None, bytes]:
            context = ssl.create_default_context(cafile=str(self.cert))
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=HOSTNAME) as conn,
            ):
                conn.sendall(b"ping")
                data = b""
                while len(data) < 4:
                    data += conn.recv(4)
                return conn.version(), data

        version, data = await deferToThread(talk)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(data, b"ping")

    async def test_wrong_hostname_rejected(self) -> None:
        """The certificate is for HOSTNAME (and localhost), not for any name."""
        port = self.listen(Echo)
        endpoint = wrapClientTLS(
            self.options(self.cert, "other.example"),
            TCP4ClientEndpoint(reactor, "127.0.0.1", port),
        )
        client = await connectProtocol(endpoint, Client())
        await client.lost
        self.assertFalse(client.handshake.called)

    async def test_reload(self) -> None:
        port = self.listen(Echo)
        live_cert, live_key = self.cert, self.key
        first = await self.connect(port, live_cert)
        first_peer = await first.handshake

        new_cert, new_key = make_pair(self.dir / "b")
        shutil.copyfile(new_cert, live_cert)
        shutil.copyfile(new_key, live_key)
        old_context = self.tls.getContext()
        self.tls.reload()
        self.assertIsNot(self.tls.getContext(), old_context)

        second = await self.connect(port, new_cert)
        second_peer = await second.handshake
        self.assertEqual(second_peer.serial_number, load_cert(new_cert).serial_number)
        self.assertNotEqual(second_peer.serial_number, first_peer.serial_number)
        # The connection opened before the reload still works.
        await first.roundtrip(b"still here")
        await second.roundtrip(b"new")

    async def test_failed_reload_keeps_old_certificate(self) -> None:
        port = self.listen(Echo)
        serial = load_cert(self.cert).serial_number
        context = self.tls.getContext()
        _, other_key = make_pair(self.dir / "b")
        shutil.copyfile(other_key, self.key)
        error = self.assertRaises(TLSConfigError, self.tls.reload)
        self.assertEqual(error.key, "tls.private_key")
        self.assertIs(self.tls.getContext(), context)
        self.key.write_bytes(b"garbage")
        self.assertRaises(TLSConfigError, self.tls.reload)
        self.assertIs(self.tls.getContext(), context)

        client = await self.connect(port, self.cert)
        peer = await client.handshake
        self.assertEqual(peer.serial_number, serial)
