"""Secrets: how they are made, recognized, hashed and compared. The only module that touches hashes.

Every secret is 256 random bits with a prefix naming its kind (`lq_user_...`), so a leaked one is easy to
recognize and a scanner can find it. Only SHA-256 hashes are stored. A slow password hash (bcrypt, argon2)
protects guessable passwords; these secrets are not guessable, and a plain hash lets the gateway find the
owner of a secret with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum


class SecretKind(StrEnum):
    group = "group"
    user = "user"
    compute = "compute"
    operator = "operator"

    @property
    def prefix(self) -> str:
        return f"lq_{self.value}_"


def new_secret(kind: SecretKind) -> str:
    """A fresh secret of `kind`, e.g. `lq_user_<43 url-safe characters>` (256 bits)."""
    return kind.prefix + secrets.token_urlsafe(32)


def secret_kind(secret: str) -> SecretKind | None:
    """The kind a secret's prefix names, or None for something that is not one of our secrets."""
    for kind in SecretKind:
        if secret.startswith(kind.prefix) and len(secret) > len(kind.prefix):
            return kind
    return None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
