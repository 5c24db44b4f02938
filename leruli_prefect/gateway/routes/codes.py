"""Codes: the group's published images (`docker save` archives in its code bucket) and the bucket itself.

The gateway keeps only the registry (name, version, digests, object key); the archives live in the group's
S3 code bucket, written with the publisher's keys and read with the nodes' keys: the server holds no S3 key.
"""

from __future__ import annotations

import difflib
import secrets

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.gateway import audit, crud
from leruli_prefect.gateway.callers import Caller
from leruli_prefect.gateway.db import Code, Group
from leruli_prefect.gateway.deps import CallerDep, SessionDep, StateDep, UserDep, caller_group, source_of
from leruli_prefect.gateway.models import CodeBucketView, CodeList, CodePublish, CodeView
from leruli_prefect.gateway.security import SecretKind

router = APIRouter(tags=["codes"])

_SIMILAR_SHOWN = 5
# The original Leruli client lists codes in the bucket `code-<group token>` (see routes/legacy_v22_1.py):
# our code buckets begin the same way, so that it finds them.
LEGACY_CODE_BUCKET_PREFIX = "code-"


def _require_member_or_node(caller: Caller) -> Group:
    """Members list the codes; nodes too, since they fetch the archives and check the digests."""
    if caller.kind not in {SecretKind.user, SecretKind.group, SecretKind.compute}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="this needs the group token, a user's API secret or a node's credentials; "
            f"you called as {caller.kind.value}",
        )
    return caller_group(caller)


async def _bucket_name(session: AsyncSession, group: Group) -> str:
    """The group's code bucket name, chosen (128 random bits) on the first call and kept from then on."""
    record = await crud.code_bucket_of(session, group=group)
    if record is not None:
        return record.bucket
    try:
        record = await crud.create_code_bucket(
            session, group=group, bucket=f"{LEGACY_CODE_BUCKET_PREFIX}leruli-{secrets.token_hex(16)}"
        )
        await session.commit()
    except IntegrityError:  # another first publisher won the race: theirs is the group's bucket
        await session.rollback()
        record = await crud.code_bucket_of(session, group=group)
        assert record is not None
    return record.bucket


def _view(code: Code, bucket: str) -> CodeView:
    return CodeView(
        name=code.name,
        version=code.version,
        image=f"{code.name}:{code.version}",
        image_id=code.image_id,
        archive_sha256=code.archive_sha256,
        bucket=bucket,
        object_key=code.object_key,
        size=code.size,
        published_by=code.published_by,
        published_at=code.published_at,
    )


@router.get("/codes")
async def list_codes(caller: CallerDep, session: SessionDep) -> CodeList:
    group = _require_member_or_node(caller)
    codes = await crud.codes_of_group(session, group=group)
    if not codes:
        return CodeList(codes=[])
    bucket = await _bucket_name(session, group)
    return CodeList(codes=[_view(code, bucket) for code in codes])


@router.get("/codes/bucket")
async def code_bucket(caller: UserDep, session: SessionDep) -> CodeBucketView:
    """Where publishers upload archives; the first publisher creates the bucket in S3."""
    return CodeBucketView(bucket=await _bucket_name(session, caller_group(caller)))


@router.post("/codes", status_code=status.HTTP_201_CREATED)
async def publish_code(
    body: CodePublish, caller: UserDep, session: SessionDep, state: StateDep, request: Request
) -> CodeView:
    """Record a code whose archive is in the code bucket. A version never changes once published."""
    group = caller_group(caller)
    bucket = await _bucket_name(session, group)
    existing = await crud.code_by_name(session, group=group, name=body.name, version=body.version)
    if existing is not None:
        if existing.image_id == body.image_id:
            return _view(existing, bucket)  # the same image again: nothing changes
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{body.name}:{body.version} is already published as {existing.image_id[:19]}; "
            "a published version never changes (nodes may hold it): publish a new version",
        )
    try:
        code = await crud.add_code(session, group=group, published_by=caller.name, **body.model_dump())
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"{body.name}:{body.version} was just published by someone else"
        ) from exc
    await audit.record(
        state.sessions,
        caller=caller,
        action=f"publish code {body.name}:{body.version}",
        outcome="ok",
        detail=f"{body.image_id} ({body.size} bytes)",
        source=source_of(request),
    )
    return _view(code, bucket)


async def require_published(session: AsyncSession, group: Group, images: set[str]) -> None:
    """Refuse (409) jobs naming an image the group has not published, with the similar names it has.

    Applies once the group has published a code: until then its jobs run images the nodes hold locally
    (the operator's images, as before codes existed), and nothing could be listed or checked.
    """
    codes = await crud.codes_of_group(session, group=group)
    if not codes:
        return
    published = sorted(f"{code.name}:{code.version}" for code in codes)
    missing = sorted(images - set(published))
    if not missing:
        return
    problems = []
    for image in missing:
        name = image.partition(":")[0]
        similar = [known for known in published if known.partition(":")[0] == name]
        similar += [
            known
            for known in difflib.get_close_matches(image, published, n=_SIMILAR_SHOWN, cutoff=0.5)
            if known not in similar
        ]
        hint = f"similar: {', '.join(similar[:_SIMILAR_SHOWN])}" if similar else "no similar code"
        problems.append(f"{image} ({hint})")
    # 409, not 422: 422 is FastAPI's own answer to a malformed body, documented as a list of field errors.
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        detail=f"group {group.name} has no code {'; '.join(problems)}. "
        "`leruli list-codes` lists its codes; `leruli publish-code CODE VERSION` adds one",
    )
