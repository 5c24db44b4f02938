"""Who is calling: one function that turns a request's credentials into a `Caller`, for routes and the proxy.

Credentials travel as `Authorization: Bearer <secret>` (API secret, group token, operator secret), as Basic
auth of the operator secret (what Prefect's UI sends), or, for compute nodes, as the two headers below, which
Prefect's client adds to every request and websocket through `PREFECT_CLIENT_CUSTOM_HEADERS`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.errors import LeruliError
from leruli_prefect.gateway import crud
from leruli_prefect.gateway.db import Group, User
from leruli_prefect.gateway.security import SecretKind, hash_secret, secret_kind, secret_matches

GROUP_TOKEN_HEADER = "x-leruli-group-token"
COMPUTE_SECRET_HEADER = "x-leruli-compute-secret"


class Unauthenticated(LeruliError):
    """The request carries no credential we accept; the message says which and why."""


@dataclass(frozen=True)
class Caller:
    kind: SecretKind
    group: Group | None = None
    user: User | None = None

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.name
        return self.kind.value


def _bearer_or_basic(authorization: str) -> str:
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthenticated("malformed Basic credential") from exc
    raise Unauthenticated("malformed Authorization header: expected 'Bearer <secret>'")


async def resolve_caller(
    session: AsyncSession,
    *,
    authorization: str | None,
    group_token: str | None,
    compute_secret: str | None,
    operator_secret: str,
) -> Caller:
    """The caller these credentials prove, or `Unauthenticated` with the reason."""
    if compute_secret is not None:
        return await _compute_caller(session, group_token=group_token, compute_secret=compute_secret)
    if not authorization:
        raise Unauthenticated("no credential: send 'Authorization: Bearer <API secret or group token>'")
    secret = _bearer_or_basic(authorization)
    kind = secret_kind(secret)
    if kind is SecretKind.operator and hmac.compare_digest(secret.encode(), operator_secret.encode()):
        return Caller(kind=SecretKind.operator)
    if kind is SecretKind.user:
        user = await crud.user_by_secret_hash(session, secret_hash=hash_secret(secret))
        if user is None:
            raise Unauthenticated("API secret not accepted (check LERULI_API_SECRET)")
        if user.disabled:
            raise Unauthenticated(f"user {user.name!r} is disabled")
        return Caller(kind=kind, group=user.group, user=user)
    if kind is SecretKind.group:
        group = await crud.group_by_token_hash(session, token_hash=hash_secret(secret))
        if group is None:
            raise Unauthenticated("group token not accepted (check LERULI_GROUP_TOKEN)")
        return Caller(kind=kind, group=group)
    raise Unauthenticated("credential not accepted: not a leruli secret or no longer valid")


async def _compute_caller(session: AsyncSession, *, group_token: str | None, compute_secret: str) -> Caller:
    group = await crud.group_by_compute_secret_hash(session, secret_hash=hash_secret(compute_secret))
    if group is None or group_token is None or not secret_matches(group_token, group.token_hash):
        raise Unauthenticated("compute secret and group token not accepted (rotated, or from another group?)")
    return Caller(kind=SecretKind.compute, group=group)
