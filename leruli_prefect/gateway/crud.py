"""Reads and writes of the gateway's tables: keyword-only functions taking a session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.gateway.db import Group, User


async def group_by_name(session: AsyncSession, *, name: str) -> Group | None:
    return (await session.execute(select(Group).where(Group.name == name))).scalar_one_or_none()


async def group_by_token_hash(session: AsyncSession, *, token_hash: str) -> Group | None:
    return (await session.execute(select(Group).where(Group.token_hash == token_hash))).scalar_one_or_none()


async def group_by_compute_secret_hash(session: AsyncSession, *, secret_hash: str) -> Group | None:
    query = select(Group).where(Group.compute_secret_hash == secret_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def user_by_secret_hash(session: AsyncSession, *, secret_hash: str) -> User | None:
    return (await session.execute(select(User).where(User.secret_hash == secret_hash))).scalar_one_or_none()


async def create_group(
    session: AsyncSession,
    *,
    name: str,
    token_hash: str,
    compute_secret_hash: str,
    work_pool: str,
    deployment_id: str,
    flow_id: str,
) -> Group:
    group = Group(
        name=name,
        token_hash=token_hash,
        compute_secret_hash=compute_secret_hash,
        work_pool=work_pool,
        deployment_id=deployment_id,
        flow_id=flow_id,
    )
    session.add(group)
    await session.flush()
    return group


async def create_user(
    session: AsyncSession, *, group: Group, name: str, secret_hash: str, is_admin: bool
) -> User:
    user = User(group_id=group.id, group=group, name=name, secret_hash=secret_hash, is_admin=is_admin)
    session.add(user)
    await session.flush()
    return user
