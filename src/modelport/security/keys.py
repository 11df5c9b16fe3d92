"""API keys: making them, hashing their secrets, and reading them off a request.

A key reads ``mp_<key_id>_<secret>``: ``key_id`` (12 url-safe characters, no ``_``) is
public and names the stored record; ``secret`` is ``secrets.token_urlsafe(32)`` (256
random bits) and is shown once, when the key is made. The store keeps
HMAC-SHA256(``key_id``, secret) only. A fast keyed hash is the right tool here: a
password hash (bcrypt, argon2) exists to slow down guessing of low-entropy human
passwords, and nobody can guess 256 random bits however fast the hash; a slow hash
would only cost every request milliseconds of CPU. Keying the hash with the key id
means two keys never share a hash even for equal secrets, and comparing is
``hmac.compare_digest`` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

PREFIX = "mp_"
KEY_ID_LENGTH = 12
_KEY_ID_ALPHABET = string.ascii_letters + string.digits
_PRESENTED = re.compile(r"mp_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class IssuedKey:
    """A new key: its id, the full token to hand over once, and the hash to store."""

    key_id: str
    token: str
    secret_hash: str


def issue_key() -> IssuedKey:
    """A new random key (``secrets`` is the OS's CSPRNG)."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, f"{PREFIX}{key_id}_{secret}", hash_secret(key_id, secret))


def hash_secret(key_id: str, secret: str) -> str:
    """The stored form of a key's secret: hex HMAC-SHA256 keyed by the key id."""
    return hmac.new(key_id.encode(), secret.encode(), hashlib.sha256).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, None for anything else."""
    match = _PRESENTED.fullmatch(token)
    return (match[1], match[2]) if match is not None else None


def secret_matches(key_id: str, secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` is the key's, compared in constant time."""
    return hmac.compare_digest(hash_secret(key_id, secret), stored_hash)
