"""Server-side TLS: the certificate a3mail presents, and how it is loaded.

L{ensure_self_signed} creates a self-signed certificate on first start when no
certificate is configured.  L{ServerTLS} loads a certificate and key straight
into a pyOpenSSL context; one instance serves both implicit-TLS listeners
(L{wrap_server_factory}) and STARTTLS (C{transport.startTLS(server_tls)}), and
L{ServerTLS.reload} swaps the certificate for new connections without touching
established ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL
from twisted.internet.interfaces import (
    IOpenSSLContextFactory,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted.protocols.tls import TLSMemoryBIOProtocol

    from a3mail.config import TLSConfig

__all__ = ["ServerTLS", "TLSConfigError", "ensure_self_signed", "wrap_server_factory"]

#: How long a generated certificate is valid.
SELF_SIGNED_VALIDITY = timedelta(days=3650)


class TLSConfigError(Exception):
    """
    The certificate or key cannot be used.

    C{str()} is one line, C{<key>: <problem>}, e.g.
    C{tls.private_key: key /x/key.pem does not match certificate /x/cert.pem}.

    @ivar key: the configuration key at fault (C{tls.certificate} or
        C{tls.private_key}).
    @ivar problem: the problem, without the key.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


# -- the self-signed pair -----------------------------------------------------


def ensure_self_signed(cert_path: Path, key_path: Path, hostname: str) -> bool:
    """
    Generate a self-signed certificate and its key unless both files exist.

    The key is EC P-256, written with mode 0600; the certificate is valid for
    about ten years for C{hostname}, C{localhost}, 127.0.0.1 and ::1.  Each
    file is written atomically (temporary file, fsync, rename); missing
    directories are created with mode 0700.  Concurrent callers (several
    processes sharing a data directory) are serialized by an advisory lock on
    the certificate's directory, so they agree on one pair.

    @return: True if a new pair was written, False if both files existed.
    """
    if cert_path.exists() and key_path.exists():
        return False
    for directory in {cert_path.parent, key_path.parent}:
        _make_private_dir(directory)
    with _locked(cert_path.parent):
        if cert_path.exists() and key_path.exists():
            return False
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert_pem = _self_signed(key, hostname).public_bytes(serialization.Encoding.PEM)
        _write_atomically(key_path, key_pem, 0o600)
        _write_atomically(cert_path, cert_pem, 0o644)
    return True


def _self_signed(key: ec.EllipticCurvePrivateKey, hostname: str) -> x509.Certificate:
    """A self-signed server certificate for C{hostname} and the loopback names."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "a3mail self-signed")]
    if 0 < len(hostname) <= 64:
        attributes.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, hostname))
    name = x509.Name(attributes)
    alt_names: list[x509.GeneralName] = []
    for entry in (hostname, "localhost", "127.0.0.1", "::1"):
        general = _general_name(entry)
        if general is not None and general not in alt_names:
            alt_names.append(general)
    public_key = key.public_key()
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    return builder.sign(key, hashes.SHA256())


def _general_name(entry: str) -> x509.GeneralName | None:
    """A subjectAltName entry: an IP address, else a DNS name (None if unusable)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(entry))
    except ValueError:
        pass
    try:
        return x509.DNSName(entry.encode("idna").decode("ascii"))
    except (UnicodeError, ValueError):
        return None


def _make_private_dir(directory: Path) -> None:
    """Create C{directory} (and its parents) if missing; the leaf gets mode 0700."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory (flock) lock on C{directory}."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace C{path} with C{data} (mode C{mode}) so readers see old or new, never half."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# -- loading into OpenSSL -------------------------------------------------------


def _os_reason(error: OSError) -> str:
    if error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error)


def _ssl_reason(error: SSL.Error) -> str:
    """The reasons in an OpenSSL error queue, on one line."""
    reasons: list[str] = []
    if error.args and isinstance(error.args[0], list):
        for entry in error.args[0]:
            reason = entry[-1] if isinstance(entry, tuple) and entry else str(entry)
            if reason and reason not in reasons:
                reasons.append(str(reason))
    return "; ".join(reasons) or str(error) or "unknown OpenSSL error"


def _read(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TLSConfigError(key, f"cannot read {path}: {_os_reason(e)}") from None


_USABLE_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
UsableKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


def _load_private_key(path: Path) -> UsableKey:
    """The private key in the PEM file at C{path}, which must not be encrypted."""
    data = _read("tls.private_key", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        reason = "the key is protected by a passphrase; a3mail needs an unencrypted key"
    except (ValueError, UnsupportedAlgorithm):
        reason = "no usable PEM private key found"
    else:
        if isinstance(key, _USABLE_KEYS):
            return key
        reason = f"unsupported key type {type(key).__name__}"
    raise TLSConfigError("tls.private_key", f"cannot load {path}: {reason}")


def _build_context(certificate: Path, private_key: Path) -> SSL.Context:
    """A server context holding the certificate chain and key, both checked."""
    _read("tls.certificate", certificate)

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(
        SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION
    )
    context.set_session_id(b"a3mail")
    try:
        context.use_certificate_chain_file(os.fsencode(certificate))
    except SSL.Error as e:
        reason = _ssl_reason(e)
        if "no start line" in reason:
            reason = "no PEM certificate found"
        raise TLSConfigError("tls.certificate", f"cannot load {certificate}: {reason}") from None
    key = _load_private_key(private_key)
    try:
        context.use_privatekey(key)
        context.check_privatekey()
    except (SSL.Error, ValueError, TypeError):
        raise TLSConfigError(
            "tls.private_key", f"key {private_key} does not match certificate {certificate}"
        ) from None
    return context


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLContextFactory)
class ServerTLS:
    """
    The server's TLS configuration, reloadable while running.

    Pass an instance to C{transport.startTLS()} for STARTTLS, or wrap a factory
    with L{wrap_server_factory} for implicit TLS.  Each new connection takes
    the context current at that moment.
    """

    def __init__(self, certificate: Path, private_key: Path) -> None:
        """
        @param certificate: PEM file with the certificate, then any chain.
        @param private_key: PEM file with the unencrypted private key.
        """
        self.certificate = Path(certificate)
        self.private_key = Path(private_key)
        self._context: SSL.Context | None = None

    @classmethod
    def from_config(cls, config: TLSConfig, hostname: str) -> ServerTLS:
        """
        Build and load a L{ServerTLS} from the C{[tls]} section, first
        generating the self-signed pair if the configuration uses it.

        @raise TLSConfigError: if the files cannot be used.
        """
        if config.generated:
            ensure_self_signed(config.certificate, config.private_key, hostname)
        tls = cls(config.certificate, config.private_key)
        tls.load()
        return tls

    def load(self) -> None:
        """
        Read and check the certificate and key, and make them current.

        @raise TLSConfigError: if either file is unreadable or invalid, or they
            do not match; the previous context (if any) stays current.
        """
        self._context = _build_context(self.certificate, self.private_key)

    def reload(self) -> None:
        """
        Re-read the files (e.g. after renewal) and swap them in for new
        connections; established connections keep their certificate.

        @raise TLSConfigError: as L{load}; the old certificate stays in use.
        """
        self.load()

    def getContext(self) -> SSL.Context:
        """
        The current server context.

        @raise RuntimeError: if L{load} has not succeeded yet.
        """
        if self._context is None:
            raise RuntimeError("ServerTLS.load() has not been called")
        return self._context

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """A new OpenSSL connection on the current context (for Twisted's TLS layer)."""
        return SSL.Connection(self.getContext(), None)


def wrap_server_factory(factory: IProtocolFactory, tls: ServerTLS) -> TLSMemoryBIOFactory:
    """Wrap C{factory} for an implicit-TLS listener presenting C{tls}'s certificate."""
    return TLSMemoryBIOFactory(tls, False, factory)
