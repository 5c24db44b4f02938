"""Secrets: random, recognizable by kind, stored as hashes only."""

from __future__ import annotations

from leruli_prefect.gateway.security import SecretKind, hash_secret, new_secret, secret_kind, secret_matches


def test_secrets_have_their_kind_prefix_and_256_bits() -> None:
    for kind in SecretKind:
        secret = new_secret(kind)
        assert secret.startswith(f"lq_{kind.value}_")
        assert len(secret) - len(kind.prefix) >= 43  # 32 bytes, url-safe base64
        assert secret_kind(secret) is kind


def test_secrets_are_unique() -> None:
    assert len({new_secret(SecretKind.user) for _ in range(1000)}) == 1000


def test_unknown_strings_have_no_kind() -> None:
    assert secret_kind("hunter2") is None
    assert secret_kind("lq_user_") is None
    assert secret_kind("") is None


def test_hash_matches_only_its_secret() -> None:
    secret = new_secret(SecretKind.compute)
    stored = hash_secret(secret)
    assert secret not in stored
    assert secret_matches(secret, stored)
    assert not secret_matches(secret + "x", stored)
    assert not secret_matches(new_secret(SecretKind.compute), stored)
