"""Reads and writes of the gateway's tables: keyword-only functions taking a session."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.gateway.db import AuditEntry, Code, CodeBucket, Group, User


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


async def users_of_group(session: AsyncSession, *, group: Group) -> list[User]:
    query = select(User).where(User.group_id == group.id).order_by(User.created_at, User.id)
    return list((await session.execute(query)).scalars())


async def user_by_name(session: AsyncSession, *, group: Group, name: str) -> User | None:
    query = select(User).where(User.group_id == group.id, User.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def count_active_admins(session: AsyncSession, *, group: Group) -> int:
    query = select(func.count()).where(
        User.group_id == group.id, User.is_admin.is_(True), User.disabled.is_(False)
    )
    return (await session.execute(query)).scalar_one()


async def add_audit_entry(
    session: AsyncSession,
    *,
    group_id: int | None,
    actor: str,
    action: str,
    outcome: str,
    detail: str,
    source: str,
) -> None:
    session.add(
        AuditEntry(
            group_id=group_id,
            actor=actor[:80],
            action=action[:200],
            outcome=outcome,
            detail=detail[:500],
            source=source[:64],
        )
    )
    await session.flush()


async def audit_of_group(session: AsyncSession, *, group: Group, limit: int) -> list[AuditEntry]:
    query = (
        select(AuditEntry).where(AuditEntry.group_id == group.id).order_by(AuditEntry.id.desc()).limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def code_bucket_of(session: AsyncSession, *, group: Group) -> CodeBucket | None:
    return await session.get(CodeBucket, group.id)


async def create_code_bucket(session: AsyncSession, *, group: Group, bucket: str) -> CodeBucket:
    record = CodeBucket(group_id=group.id, bucket=bucket)
    session.add(record)
    await session.flush()
    return record


async def codes_of_group(session: AsyncSession, *, group: Group) -> list[Code]:
    query = select(Code).where(Code.group_id == group.id).order_by(Code.name, Code.version)
    return list((await session.execute(query)).scalars())


async def code_by_name(session: AsyncSession, *, group: Group, name: str, version: str) -> Code | None:
    query = select(Code).where(Code.group_id == group.id, Code.name == name, Code.version == version)
    return (await session.execute(query)).scalar_one_or_none()


async def has_codes(session: AsyncSession, *, group: Group) -> bool:
    query = select(Code.id).where(Code.group_id == group.id).limit(1)
    return (await session.execute(query)).first() is not None


async def add_code(
    session: AsyncSession,
    *,
    group: Group,
    name: str,
    version: str,
    image_id: str,
    archive_sha256: str,
    object_key: str,
    size: int,
    published_by: str,
) -> Code:
    code = Code(
        group_id=group.id,
        name=name,
        version=version,
        image_id=image_id,
        archive_sha256=archive_sha256,
        object_key=object_key,
        size=size,
        published_by=published_by,
    )
    session.add(code)
    await session.flush()
    return code
