"""API keys: shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "dc_"
MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret: str
    key_hash: str


def generate_key() -> NewKey:
    """A fresh key: a short public prefix for recognising it, then 256 random bits."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, secret=secret, key_hash=hash_key(secret))


def hash_key(secret: str) -> str:
    """Keys carry 256 random bits, so one SHA-256 is a safe, constant-cost lookup hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and len(token) <= MAX_KEY_LENGTH
