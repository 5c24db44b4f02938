"""Users of a group: listed by any member; added, disabled and promoted or demoted by admins; each user
rotates their own API secret."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from leruli_prefect.gateway import audit, crud
from leruli_prefect.gateway.db import User, utcnow
from leruli_prefect.gateway.deps import (
    AdminDep,
    MemberDep,
    SessionDep,
    StateDep,
    UserDep,
    caller_group,
    caller_user,
    source_of,
)
from leruli_prefect.gateway.models import (
    ApiSecret,
    UserCreate,
    UserCreated,
    UserList,
    UserRoleUpdate,
    UserView,
)
from leruli_prefect.gateway.security import SecretKind, hash_secret, new_secret

router = APIRouter(tags=["users"])


def _view(user: User) -> UserView:
    return UserView(
        name=user.name,
        is_admin=user.is_admin,
        disabled=user.disabled,
        created=user.created_at,
        disabled_at=user.disabled_at,
    )


@router.get("/users")
async def list_users(caller: MemberDep, session: SessionDep) -> UserList:
    users = await crud.users_of_group(session, group=caller_group(caller))
    return UserList(users=[_view(user) for user in users])


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def add_user(
    body: UserCreate, caller: AdminDep, session: SessionDep, state: StateDep, request: Request
) -> UserCreated:
    group = caller_group(caller)
    if await crud.user_by_name(session, group=group, name=body.name) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"user {body.name!r} already exists in {group.name}"
        )
    api_secret = new_secret(SecretKind.user)
    await crud.create_user(
        session, group=group, name=body.name, secret_hash=hash_secret(api_secret), is_admin=body.admin
    )
    await session.commit()
    role = "admin" if body.admin else "regular user"
    await audit.record(
        state.sessions,
        caller=caller,
        action=f"add user {body.name}",
        outcome="ok",
        detail=role,
        source=source_of(request),
    )
    return UserCreated(name=body.name, is_admin=body.admin, api_secret=api_secret)


@router.post("/users/me/secret")
async def rotate_own_secret(
    caller: UserDep, session: SessionDep, state: StateDep, request: Request
) -> ApiSecret:
    """A new API secret for the caller, shown once. Every request is checked against the stored hash, so the
    old secret is refused from the next request on: /v1, and the Prefect UI signed in with it (signed out)."""
    user = await session.merge(caller_user(caller))
    api_secret = new_secret(SecretKind.user)
    user.secret_hash = hash_secret(api_secret)
    await session.commit()
    await audit.record(
        state.sessions,
        caller=caller,
        action="rotate own API secret",
        outcome="ok",
        detail="previous secret revoked",
        source=source_of(request),
    )
    return ApiSecret(name=user.name, api_secret=api_secret)


async def _target(session: SessionDep, caller: AdminDep, name: str) -> User:
    group = caller_group(caller)
    user = await crud.user_by_name(session, group=group, name=name)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user {name!r} in group {group.name}")
    return user


async def _refuse_losing_last_admin(session: SessionDep, user: User, what: str) -> None:
    if user.is_admin and not user.disabled and await crud.count_active_admins(session, group=user.group) <= 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"{user.name!r} is the group's last admin and cannot be {what}"
        )


@router.post("/users/{name}/disable")
async def disable_user(
    name: str, caller: AdminDep, session: SessionDep, state: StateDep, request: Request
) -> UserView:
    user = await _target(session, caller, name)
    if not user.disabled:
        await _refuse_losing_last_admin(session, user, "disabled")
        user.disabled = True
        user.disabled_at = utcnow()
        await session.commit()
    await audit.record(
        state.sessions,
        caller=caller,
        action=f"disable user {name}",
        outcome="ok",
        detail="",
        source=source_of(request),
    )
    return _view(user)


@router.patch("/users/{name}")
async def set_role(
    name: str, body: UserRoleUpdate, caller: AdminDep, session: SessionDep, state: StateDep, request: Request
) -> UserView:
    user = await _target(session, caller, name)
    if user.is_admin and not body.is_admin:
        await _refuse_losing_last_admin(session, user, "demoted")
    user.is_admin = body.is_admin
    await session.commit()
    role = "admin" if body.is_admin else "regular user"
    await audit.record(
        state.sessions,
        caller=caller,
        action=f"make {name} {role}",
        outcome="ok",
        detail="",
        source=source_of(request),
    )
    return _view(user)
