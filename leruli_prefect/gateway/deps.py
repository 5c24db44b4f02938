"""FastAPI dependencies: the database session, the Prefect client and who is calling, by role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.gateway.callers import (
    COMPUTE_SECRET_HEADER,
    GROUP_TOKEN_HEADER,
    Caller,
    Unauthenticated,
    resolve_caller,
)
from leruli_prefect.gateway.db import Group, User
from leruli_prefect.gateway.security import SecretKind
from leruli_prefect.gateway.state import GatewayState


def get_state(request: Request) -> GatewayState:
    return request.app.state.gateway


StateDep = Annotated[GatewayState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def current_caller(request: Request, session: SessionDep, state: StateDep) -> Caller:
    try:
        caller = await resolve_caller(
            session,
            authorization=request.headers.get("authorization"),
            group_token=request.headers.get(GROUP_TOKEN_HEADER),
            compute_secret=request.headers.get(COMPUTE_SECRET_HEADER),
            operator_secret=state.operator_secret,
        )
    except Unauthenticated as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    request.state.caller = caller  # for the audit of refusals
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def _require(caller: Caller, kinds: set[SecretKind], what: str) -> Caller:
    if caller.kind not in kinds:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"this needs {what}; you called as {caller.kind.value}"
        )
    return caller


def require_user(caller: CallerDep) -> Caller:
    return _require(caller, {SecretKind.user}, "a user's API secret")


def require_member(caller: CallerDep) -> Caller:
    return _require(caller, {SecretKind.user, SecretKind.group}, "the group token or a user's API secret")


def require_member_or_node(caller: CallerDep) -> Caller:
    return _require(
        caller,
        {SecretKind.user, SecretKind.group, SecretKind.compute},
        "the group token, a user's API secret or a node's credentials",
    )


def require_node(caller: CallerDep) -> Caller:
    return _require(caller, {SecretKind.compute}, "a node's credentials (group token and compute secret)")


def require_admin(caller: CallerDep) -> Caller:
    _require(caller, {SecretKind.user}, "an admin's API secret")
    if caller.user is None or not caller.user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs an admin of the group")
    return caller


def require_operator(caller: CallerDep) -> Caller:
    return _require(caller, {SecretKind.operator}, "the server operator's secret")


UserDep = Annotated[Caller, Depends(require_user)]
MemberDep = Annotated[Caller, Depends(require_member)]
MemberOrNodeDep = Annotated[Caller, Depends(require_member_or_node)]
NodeDep = Annotated[Caller, Depends(require_node)]
AdminDep = Annotated[Caller, Depends(require_admin)]
OperatorDep = Annotated[Caller, Depends(require_operator)]


def caller_group(caller: Caller) -> Group:
    assert caller.group is not None, "member and user callers always have a group"
    return caller.group


def caller_user(caller: Caller) -> User:
    assert caller.user is not None, "user callers always have a user"
    return caller.user


def source_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
