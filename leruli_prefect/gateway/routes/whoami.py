"""Who the presented credential belongs to; nodes use it to learn their group's work pool."""

from __future__ import annotations

from fastapi import APIRouter

from leruli_prefect.gateway.deps import CallerDep
from leruli_prefect.gateway.models import WhoAmI

router = APIRouter(tags=["whoami"])


@router.get("/whoami")
async def whoami(caller: CallerDep) -> WhoAmI:
    return WhoAmI(
        kind=caller.kind.value,
        group=caller.group.name if caller.group else None,
        user=caller.user.name if caller.user else None,
        is_admin=bool(caller.user and caller.user.is_admin),
        work_pool=caller.group.work_pool if caller.group else None,
    )
