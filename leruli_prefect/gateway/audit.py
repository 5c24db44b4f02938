"""The audit log: every admin action and every refused request, who, what, when, from where.

Entries are written in a session of their own, so a refused request (whose own session rolls back) still
leaves its trace. Secrets never go in: the actor is a user's name or a credential's kind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from leruli_prefect.gateway import crud

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from leruli_prefect.gateway.callers import Caller

logger = logging.getLogger(__name__)


def actor_of(caller: Caller | None) -> str:
    if caller is None:
        return "anonymous"
    if caller.user is not None:
        return f"user:{caller.user.name}"
    return caller.kind.value


async def record(
    sessions: async_sessionmaker[AsyncSession],
    *,
    caller: Caller | None,
    action: str,
    outcome: str,
    detail: str,
    source: str,
) -> None:
    group_id = caller.group.id if caller is not None and caller.group is not None else None
    try:
        async with sessions() as session:
            await crud.add_audit_entry(
                session,
                group_id=group_id,
                actor=actor_of(caller),
                action=action,
                outcome=outcome,
                detail=detail,
                source=source,
            )
            await session.commit()
    except Exception:  # the audit must never turn a refusal into a 500
        logger.exception("could not write an audit entry for %s", action)
