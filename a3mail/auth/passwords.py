"""Password hashing with argon2id (argon2-cffi), with rehashing when parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106 "second recommended option" memory cost, sized for a mail server's login rate.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
MAX_PASSWORD_LENGTH = 1024

# A valid hash of a random password: verifying against it makes an unknown user cost the same
# time as a known one with a wrong password.
_DUMMY_HASH = _HASHER.hash("a3mail-dummy-password-for-timing")


def hash_password(password: str) -> str:
    """An argon2id hash of *password* (in PHC string format)."""
    if not password:
        raise ValueError("the password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if *password* matches *stored_hash*; a missing hash costs as much and is False."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True if the hash was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
