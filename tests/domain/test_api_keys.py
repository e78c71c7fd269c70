"""API keys: generation, hashing and recognition."""

from __future__ import annotations

import re

import pytest

from app.domain.api_keys import KEY_PREFIX, MAX_KEY_LENGTH, generate_key, hash_key, looks_like_key


def test_generated_secret_starts_with_its_prefix() -> None:
    key = generate_key()
    assert key.prefix.startswith(KEY_PREFIX)
    assert re.fullmatch(rf"{KEY_PREFIX}[0-9a-f]{{8}}", key.prefix)
    assert key.secret.startswith(key.prefix + "_")


def test_generated_hash_matches_hash_of_secret() -> None:
    key = generate_key()
    assert key.key_hash == hash_key(key.secret)
    assert re.fullmatch(r"[0-9a-f]{64}", key.key_hash)
    assert key.secret not in key.key_hash


def test_generated_key_looks_like_a_key() -> None:
    key = generate_key()
    assert looks_like_key(key.secret)
    assert len(key.secret) <= MAX_KEY_LENGTH


def test_generated_keys_are_unique() -> None:
    keys = [generate_key() for _ in range(50)]
    assert len({k.secret for k in keys}) == 50
    assert len({k.key_hash for k in keys}) == 50


def test_hash_key_is_deterministic_and_sensitive() -> None:
    assert hash_key("dc_abc") == hash_key("dc_abc")
    assert hash_key("dc_abc") != hash_key("dc_abd")
    # Known SHA-256 vector.
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("dc_", True),
        ("dc_0123abcd_xyz", True),
        ("dc_" + "x" * (MAX_KEY_LENGTH - 3), True),
        ("dc_" + "x" * (MAX_KEY_LENGTH - 2), False),
        ("", False),
        ("DC_0123abcd_xyz", False),
        ("xdc_0123", False),
        ("Bearer dc_0123", False),
        ("sk_live_123", False),
    ],
)
def test_looks_like_key(token: str, expected: bool) -> None:
    assert looks_like_key(token) is expected
