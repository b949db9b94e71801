"""DKIM (RFC 6376) verification with dkimpy, its DNS answered from asynchronous lookups.

dkimpy looks keys up synchronously.  L{check_dkim} therefore reads the selector and
domain of the first L{MAX_SIGNATURES} DKIM-Signature fields, fetches their key records
through the asynchronous resolver, and only then verifies in a worker thread with a
dkimpy DNS function that answers from those prefetched records.

Per signature: C{pass}; C{fail} when the signature or the body hash does not match;
C{permerror} for a malformed or expired signature, a key that is missing (RFC 6376
6.1.2: "no key for signature" is a permanent failure), revoked, unparsable or too small;
C{temperror} when the key lookup failed.  The message's result is C{pass} if any
signature passed, else C{temperror}, C{fail}, C{permerror} in that order of precedence,
and C{none} without signatures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import dkim
from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.python.failure import Failure

from a3mail.logs import get_logger
from a3mail.smtp.dns import DNSResolver, DNSTemporaryError, normalize_name
from a3mail.smtp.msgfields import tag_list

__all__ = ["MAX_SIGNATURES", "DKIMOutcome", "SignatureKey", "check_dkim", "verify_signatures"]

log = get_logger(__name__)

#: Signatures verified per message; later ones are ignored.
MAX_SIGNATURES = 5

#: Runs a function in a worker thread: C{run(f, *args) -> Deferred}.
ThreadRunner = Callable[..., Deferred[Any]]

_dkimpy_log = logging.getLogger("a3mail.smtp.dkimpy")
_dkimpy_log.addHandler(logging.NullHandler())
_dkimpy_log.propagate = False


@attrs.frozen
class DKIMOutcome:
    """The DKIM result of a message and the d= domains whose signatures passed."""

    result: str
    passing_domains: tuple[str, ...] = ()
    signature_results: tuple[str, ...] = ()


@attrs.frozen
class SignatureKey:
    """
    A signature's key as prefetched.

    @ivar domain: the signature's d= (normalised), or C{""} if unusable.
    @ivar name: the key record's name, or L{None} when s= or d= is missing or malformed.
    @ivar records: the TXT records found (empty when there are none).
    @ivar temporary: the lookup failed temporarily.
    """

    domain: str
    name: str | None
    records: tuple[bytes, ...] = ()
    temporary: bool = False


def check_dkim(
    resolver: DNSResolver,
    message: bytes,
    fields: Sequence[tuple[str, bytes]],
    run_in_thread: ThreadRunner,
) -> Deferred[DKIMOutcome]:
    """Verify the first DKIM signatures of C{message}, whose header fields are C{fields}."""
    return Deferred.fromCoroutine(_check(resolver, message, fields, run_in_thread))


async def _check(
    resolver: DNSResolver,
    message: bytes,
    fields: Sequence[tuple[str, bytes]],
    run_in_thread: ThreadRunner,
) -> DKIMOutcome:
    signatures = [value for name, value in fields if name == "dkim-signature"][:MAX_SIGNATURES]
    if not signatures:
        return DKIMOutcome("none")
    wanted = [_key_name(value) for value in signatures]
    names = sorted({name for _, name in wanted if name is not None})
    answers: dict[str, tuple[tuple[bytes, ...], bool]] = {}
    if names:
        outcomes = await DeferredList([resolver.txt(name) for name in names], consumeErrors=True)
        for name, (_, value) in zip(names, outcomes):
            if isinstance(value, Failure):
                if value.check(CancelledError):
                    value.raiseException()  # verify() gave up: stop here
                if not value.check(DNSTemporaryError):
                    log.failure("DKIM key lookup of {name} failed", value, name=name)
                answers[name] = ((), True)
            else:
                answers[name] = (tuple(value), False)
    keys = [
        SignatureKey(domain, name, *answers[name]) if name else SignatureKey(domain, None)
        for domain, name in wanted
    ]
    results = await run_in_thread(verify_signatures, message, keys)
    return _combine(keys, results)


def _key_name(signature: bytes) -> tuple[str, str | None]:
    tags = tag_list(signature)
    try:
        domain = b"".join(tags.get("d", b"").split()).decode("ascii")
        selector = b"".join(tags.get("s", b"").split()).decode("ascii")
    except UnicodeDecodeError:
        return "", None
    normal_domain = normalize_name(domain) if domain else None
    if not selector or normal_domain is None:
        return normal_domain or "", None
    return normal_domain, normalize_name(f"{selector}._domainkey.{normal_domain}")


def _combine(keys: Sequence[SignatureKey], results: Sequence[str]) -> DKIMOutcome:
    passing = tuple(dict.fromkeys(k.domain for k, r in zip(keys, results) if r == "pass"))
    for result in ("pass", "temperror", "fail", "permerror"):
        if result in results:
            return DKIMOutcome(result, passing, tuple(results))
    return DKIMOutcome("permerror", passing, tuple(results))  # pragma: no cover - defensive


def verify_signatures(message: bytes, keys: Sequence[SignatureKey]) -> list[str]:
    """
    Verify signature number i of C{message} with C{keys[i]}; one result per key.

    Blocking (meant for a worker thread) and never raising.
    """
    try:
        verifier = dkim.DKIM(message, logger=_dkimpy_log)
    except Exception:
        return ["permerror"] * len(keys)
    return [_verify_one(verifier, index, key) for index, key in enumerate(keys)]


def _verify_one(verifier: Any, index: int, key: SignatureKey) -> str:
    if key.temporary:
        return "temperror"
    if key.name is None:
        return "permerror"
    try:
        if not verifier.verify_headerprep(index):
            return "permerror"
        record = _usable_key(key)
        if record is None:
            return "permerror"
        verified = verifier.verify(idx=index, dnsfunc=lambda name, timeout=5: record)
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return "fail"
        return "permerror"
    except Exception:  # malformed input of any kind: never let it escape
        return "permerror"
    return "pass" if verified else "fail"


def _usable_key(key: SignatureKey) -> bytes | None:
    """The first key record that dkimpy can use, or L{None}."""
    for record in key.records:
        try:
            dkim.evaluate_pk(key.name, record)
        except Exception:  # noqa: S112 - an unusable record: try the next one
            continue
        return record
    return None
