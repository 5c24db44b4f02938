"""The group's compute secret: setting it and rotating it are the same call (admins only).

The previous secret stops working at once: the very next request with it is refused, and the websockets
nodes opened with it are closed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from leruli_prefect.gateway import audit
from leruli_prefect.gateway.db import utcnow
from leruli_prefect.gateway.deps import AdminDep, SessionDep, StateDep, caller_group, source_of
from leruli_prefect.gateway.models import ComputeSecret
from leruli_prefect.gateway.security import SecretKind, hash_secret, new_secret

router = APIRouter(tags=["compute secret"])


@router.post("/compute-secret")
async def rotate_compute_secret(
    caller: AdminDep, session: SessionDep, state: StateDep, request: Request
) -> ComputeSecret:
    group = await session.merge(caller_group(caller))
    secret = new_secret(SecretKind.compute)
    group.compute_secret_hash = hash_secret(secret)
    group.compute_secret_rotated_at = utcnow()
    await session.commit()
    state.node_sockets.revoke(group.id)
    await audit.record(
        state.sessions,
        caller=caller,
        action="rotate compute secret",
        outcome="ok",
        detail="previous secret revoked",
        source=source_of(request),
    )
    return ComputeSecret(compute_secret=secret)
