"""Helpers for the inbound authentication tests: keys, signing, an inline reactor."""

from __future__ import annotations

import base64
import functools
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.internet.task import Clock
from twisted.python.failure import Failure

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@a3mail.test\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b"this is a test.\r\n"
)


class InlineThreadPool:
    """A thread pool that runs each call at once, in the calling thread."""

    def callInThreadWithCallback(self, on_result: Any, function: Any, *args: Any) -> None:
        try:
            result = function(*args)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)


class InlineReactor(Clock):
    """A Clock whose "threads" run inline: verify() completes synchronously."""

    def getThreadPool(self) -> InlineThreadPool:
        return InlineThreadPool()

    def callFromThread(self, function: Any, *args: Any) -> None:
        function(*args)


@functools.cache
def rsa_key() -> tuple[bytes, bytes]:
    """(PEM private key for dkimpy, the p= value) of a 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public)


@functools.cache
def ed25519_key() -> tuple[bytes, bytes]:
    """(base64 seed for dkimpy, the p= value) of an Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(seed), base64.b64encode(public)


def rsa_record() -> bytes:
    return b"v=DKIM1; k=rsa; p=" + rsa_key()[1]


def ed25519_record() -> bytes:
    return b"v=DKIM1; k=ed25519; p=" + ed25519_key()[1]


def sign_rsa(message: bytes, domain: bytes = b"example.com", selector: bytes = b"sel") -> bytes:
    """C{message} with an rsa-sha256 DKIM-Signature prepended."""
    signature = dkim.sign(
        message, selector, domain, rsa_key()[0], include_headers=[b"from", b"to", b"subject"]
    )
    return signature + message


def sign_ed25519(message: bytes, domain: bytes = b"example.com", selector: bytes = b"ed") -> bytes:
    """C{message} with an ed25519-sha256 DKIM-Signature prepended."""
    signature = dkim.sign(
        message,
        selector,
        domain,
        ed25519_key()[0],
        signature_algorithm=b"ed25519-sha256",
        include_headers=[b"from", b"to", b"subject"],
    )
    return signature + message


#: A 768-bit RSA key (too small for DKIM: dkimpy's minimum is 1024 bits); test data only.
SMALL_RSA_PRIVATE = b"""-----BEGIN RSA PRIVATE KEY-----
MIIBygIBAAJhAKE5joUsEeJyzUpZXNVfvs40TP7+Lan2F7EZ+oMOaaAQpka+1tFd
as8cTLbwMb33EkgZxSTXS/IO3d/4bYC28iC1e55zmjQP6qwhJMh3YsCF2FeNw3DS
E6EuDDVXLfYUEwIDAQABAmBw1UFDPmZ93u6BvCzWQB3fXocMZoM60boe/hluoyWV
GlHkbScWe5SGwj2GQm/tjP2nuR3pYn4D+h9JYlYUGtZN+h7myBMZ/2GVPsdU2YxH
e2YSjnhJdTY4GRCyOoXiGPECMQDVP171iheuTvmep8FczddG/ZFGjmlqwrJxgSdv
rpyP1tX+/O2WawEJyMxm6aRXsxcCMQDBjDGMdERFCzCZ8J5DI6+PDAuxdhvSaG0V
A9PvMGHlfeUIRIJxpvt6DVYolZE6dGUCMQCOtelD45WzhpDRV601AWCH1txpXpc3
5nJrOab9u9p0/K6cBgKufo/kT2hTmxrrwiMCMFrFdTd6D8qRxOltf8vdIKjl7VX9
Hm8/qmkAspSrDD6lHJUUDFlhBu/m8VF3U/UmQQIwG0JTP+6V1EKBk+x56OBixnUG
UtV2QcRuT03sKC7ieBtoyrXOYZwPo3Egjokt5b04
-----END RSA PRIVATE KEY-----
"""
SMALL_RSA_RECORD = (
    b"v=DKIM1; k=rsa; p=MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhAKE5joUsEeJyzUpZXNVfvs40TP7+Lan2F7EZ"
    b"+oMOaaAQpka+1tFdas8cTLbwMb33EkgZxSTXS/IO3d/4bYC28iC1e55zmjQP6qwhJMh3YsCF2FeNw3DSE6EuD"
    b"DVXLfYUEwIDAQAB"
)
