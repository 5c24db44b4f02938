"""The group's audit log, readable by every member (group token or API secret)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from leruli_prefect.gateway import crud
from leruli_prefect.gateway.deps import MemberDep, SessionDep, caller_group
from leruli_prefect.gateway.models import AuditLog, AuditView

router = APIRouter(tags=["audit"])


@router.get("/audit")
async def read_audit_log(
    caller: MemberDep, session: SessionDep, limit: int = Query(default=100, ge=1, le=200)
) -> AuditLog:
    entries = await crud.audit_of_group(session, group=caller_group(caller), limit=limit)
    return AuditLog(
        entries=[
            AuditView(
                at=e.at, actor=e.actor, action=e.action, outcome=e.outcome, detail=e.detail, source=e.source
            )
            for e in entries
        ]
    )
