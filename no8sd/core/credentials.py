"""Secrets at rest: scrypt password hashes and random bearer tokens stored only as digests.

Pure functions with no I/O. Hashing a password is deliberately slow (about 70 ms and
16 MiB on a small two-core box), so callers on the event loop must run it in a thread.
A stored hash names its own parameters, so they can be raised later without breaking
existing passwords.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# n=2**14, r=8, p=1: ~70 ms and 16 MiB per hash here (tests/bench/bench_auth.py measures it).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
SCHEME = "scrypt"
# Refuse stored parameters that would make one verification take absurd memory or time.
MAX_N = 2**20
MAX_MEMORY = 256 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=MAX_MEMORY, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """Hash a password as `scrypt$n=..,r=..,p=..$salt$key` (slow: run off the event loop)."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{SCHEME}$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Check a password against a stored hash in constant time (slow: run off the loop)."""
    try:
        scheme, params, salt_text, key_text = encoded.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, expected = _unb64(salt_text), _unb64(key_text)
    except (ValueError, KeyError):
        return False
    if scheme != SCHEME or not (1 < n <= MAX_N) or r < 1 or p < 1:
        return False
    try:
        actual = _derive(password, salt, n, r, p)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """A hash verified against when a login names no usable account, so failures cost the same."""
    return hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """Return a fresh random bearer token (shown to its owner once, never stored)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
