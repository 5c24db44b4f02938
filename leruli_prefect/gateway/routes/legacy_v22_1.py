"""The original Leruli client's routes (PyPI `leruli` 22.1.6), as a thin adapter onto the /v1 handlers.

Groups moving from the original service keep their scripts: with `LERULI_BASEURL` pointed here, that client's
`task-submit` (single and `--batch`), `task-status`, `task-cancel` and `task-list-codes` call these routes;
`task-get` and `task-prune` talk to S3 only. Its wire format: JSON POSTs carrying the API secret in the body
as `secret`; a job names its bucket (`bucketid`, a uuid4 the client made and filled with `run.tgz`), its code
as `codeversion` (`name:version`), `cores`, `memorymb` and `timelimit` in seconds.

Every request becomes a call of the /v1 handler with the same caller (by keyword, as FastAPI calls them), so
the access rules are the same: the secret must be a user's API secret (disabled users refused), another
group's jobs are 404, codes are checked by `require_published`. Refusals answer `{"detail": ...}` as /v1
does; a bad secret answers 403, the status the original client reads as "API key not accepted". The routes
stay out of /openapi.json: they are the old service's contract, not ours (no header credentials, no schema of
our own to hold them to).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, HTTPException, Request, status
from prefect.server.api.server import is_client_retryable_exception
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from leruli_prefect.gateway.callers import Caller, Unauthenticated, resolve_caller
from leruli_prefect.gateway.deps import SessionDep, StateDep, require_user
from leruli_prefect.gateway.models import JobBatch, JobSubmit, JobView
from leruli_prefect.gateway.routes import codes, jobs
from leruli_prefect.gateway.state import GatewayState
from leruli_prefect.job_spec import LEGACY_BUCKET_PATTERN

router = APIRouter(tags=["legacy v22_1"], include_in_schema=False)

# The original client sends at most 50 jobs per bulk request (its own chunking).
MAX_BULK_JOBS = 50
# The original client puts the command into run.sh itself and never sends it: the job records this instead.
LEGACY_COMMAND = "(run.sh as packed by the original leruli client)"
# Our states in the original service's words. Every state in which a node holds the job reads "running":
# that is the one word on which the original `task-prune` refuses to delete a job's bucket.
_LEGACY_STATUS = {
    "Scheduled": "pending",
    "Late": "pending",
    "AwaitingRetry": "pending",
    "AwaitingConcurrencySlot": "pending",
    "Paused": "pending",
    "Suspended": "pending",
    "Pending": "running",
    "Running": "running",
    "Retrying": "running",
    "Cancelling": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Crashed": "failed",
    "Cancelled": "cancelled",
}


class LegacySecret(BaseModel):
    secret: str = Field(max_length=200, description="The user's API secret (LERULI_API_SECRET)")


class LegacyJobRef(LegacySecret):
    jobid: str = Field(max_length=100)


class LegacySubmit(LegacySecret):
    bucketid: str = Field(pattern=LEGACY_BUCKET_PATTERN, description="uuid4 bucket holding run.tgz")
    name: str = Field(default="default", description="Ignored: jobs are named by Prefect")
    codeversion: str = Field(description="`name:version`")
    cores: int = 1
    memorymb: int = 4000
    timelimit: int = Field(default=86_400, description="Seconds")

    def job(self) -> JobSubmit:
        return JobSubmit(
            image=self.codeversion,
            command=LEGACY_COMMAND,
            cores=self.cores,
            memory_mb=self.memorymb,
            time_limit_s=self.timelimit,
            bucket=self.bucketid,
            # The bucket is unique to one submission: a retried request answers the job it created.
            idempotency_key=f"legacy-bucket:{self.bucketid}",
        )


class LegacyStatus(BaseModel):
    status: str = Field(description="pending, running, completed, failed or cancelled")
    reason: str | None


class LegacyBulkResult(BaseModel):
    status: int = Field(description="200 when created, else the HTTP status a single submission would get")
    data: str | None = Field(default=None, description="The job id when created")
    detail: str | None = None


def legacy_status(view: JobView, reason: str | None = None) -> LegacyStatus:
    """`view` in the original words; a job being cancelled says so in its reason, as its status is running."""
    word = _LEGACY_STATUS.get(view.state, view.state.lower())
    if reason is None and view.state == "Cancelling":
        reason = f"being cancelled ({view.reason})" if view.reason else "being cancelled"
    return LegacyStatus(status=word, reason=reason or view.reason)


async def _legacy_user(request: Request, state: GatewayState, session: AsyncSession, secret: str) -> Caller:
    """The user whose API secret the body carries, as `UserDep` would resolve it from a header."""
    try:
        caller = await resolve_caller(
            session,
            authorization=f"Bearer {secret}",
            group_token=None,
            compute_secret=None,
            operator_secret=state.operator_secret,
        )
    except Unauthenticated as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
    request.state.caller = caller  # for the audit of refusals
    return require_user(caller)


def _job_id(jobid: str) -> UUID:
    try:
        return UUID(jobid)
    except ValueError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {jobid!r}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())


def _as_job(body: LegacySubmit) -> JobSubmit:
    try:
        return body.job()
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=_problems(exc)) from exc


@router.post("/v22_1/task-submit")
async def task_submit(body: LegacySubmit, request: Request, state: StateDep, session: SessionDep) -> str:
    """One job; answers its id (a JSON string), which the client writes to `leruli.job`."""
    caller = await _legacy_user(request, state, session, body.secret)
    view = await jobs.submit_job(body=_as_job(body), caller=caller, session=session)
    return str(view.id)


@router.post("/v22_1/bulk/task-submit")
async def bulk_task_submit(
    request: Request,
    state: StateDep,
    session: SessionDep,
    bodies: Annotated[list[dict[str, Any]], Body(max_length=MAX_BULK_JOBS)],
) -> list[LegacyBulkResult]:
    """Up to 50 jobs, each with its own status, in the order sent; the valid ones are created in bulk."""
    results: list[LegacyBulkResult | None] = [None] * len(bodies)
    by_caller: dict[str, tuple[Caller, list[tuple[int, JobSubmit]]]] = {}
    for index, raw in enumerate(bodies):
        try:
            body = LegacySubmit.model_validate(raw)
            job = _as_job(body)
            if body.secret not in by_caller:
                by_caller[body.secret] = (await _legacy_user(request, state, session, body.secret), [])
        except ValidationError as exc:
            results[index] = LegacyBulkResult(status=422, detail=_problems(exc))
            continue
        except HTTPException as exc:
            results[index] = LegacyBulkResult(status=exc.status_code, detail=str(exc.detail))
            continue
        by_caller[body.secret][1].append((index, job))
    for caller, submitted in by_caller.values():
        await _submit_for(caller, submitted, results, session)
    answered = [result for result in results if result is not None]
    assert len(answered) == len(bodies), "every job gets its own result"
    return answered


async def _submit_for(
    caller: Caller,
    submitted: list[tuple[int, JobSubmit]],
    results: list[LegacyBulkResult | None],
    session: AsyncSession,
) -> None:
    """One caller's jobs of a bulk request: refuse those naming an unpublished code, create the rest."""
    group = caller.group
    assert group is not None
    refused: dict[str, HTTPException] = {}
    for image in {job.image for _, job in submitted}:
        try:
            await codes.require_published(session, group, {image})
        except HTTPException as exc:
            refused[image] = exc
    accepted = []
    for index, job in submitted:
        if job.image in refused:
            # 422, not /v1's 409: the original client shows the detail of a 422 only.
            results[index] = LegacyBulkResult(status=422, detail=str(refused[job.image].detail))
        else:
            accepted.append((index, job))
    if not accepted:
        return
    try:
        created = await jobs.submit_jobs(
            body=JobBatch(jobs=[job for _, job in accepted]), caller=caller, session=session
        )
    except HTTPException as exc:
        for index, _ in accepted:
            results[index] = LegacyBulkResult(status=exc.status_code, detail=str(exc.detail))
        return
    except Exception as exc:
        if not is_client_retryable_exception(exc):
            raise
        # Busy (SQLite): nothing was created; the client lists these as not submitted, a rerun sends them.
        for index, _ in accepted:
            results[index] = LegacyBulkResult(status=503, detail="the server is busy; retry in a moment")
        return
    for (index, _), run in zip(accepted, created.jobs, strict=True):
        results[index] = LegacyBulkResult(status=200, data=str(run.id))


@router.post("/v22_1/task-status")
async def task_status(
    body: LegacyJobRef, request: Request, state: StateDep, session: SessionDep
) -> LegacyStatus:
    """The job's state in the original words; 404 (the client's "No such job") also for other groups' jobs."""
    caller = await _legacy_user(request, state, session, body.secret)
    return legacy_status(await jobs.read_job(job_id=_job_id(body.jobid), caller=caller, state=state))


@router.post("/v22_1/task-cancel")
async def task_cancel(
    body: LegacyJobRef, request: Request, state: StateDep, session: SessionDep
) -> LegacyStatus:
    """Cancel as /v1 does; a job that has ended already answers its state (the client prints it)."""
    caller = await _legacy_user(request, state, session, body.secret)
    job_id = _job_id(body.jobid)
    try:
        view = await jobs.cancel_job(job_id=job_id, caller=caller, state=state, request=request)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_409_CONFLICT:
            raise
        ended = await jobs.read_job(job_id=job_id, caller=caller, state=state)
        return legacy_status(ended, reason=f"had already ended{f': {ended.reason}' if ended.reason else ''}")
    return legacy_status(view)


@router.post("/latest/group-token")
async def group_token(body: LegacySecret, request: Request, state: StateDep, session: SessionDep) -> str:
    """What the original client calls the group token, it uses only to name the code bucket `code-<token>`.

    Our group token is a credential we keep only as a hash, so this answers the group's code bucket name
    without its `code-` prefix: the client then lists our code bucket, where `leruli publish-code` leaves a
    `NAME-VERSION.tgz` entry per code for it (see storage/code_archive.py).
    """
    caller = await _legacy_user(request, state, session, body.secret)
    bucket = (await codes.code_bucket(caller=caller, session=session)).bucket
    if not bucket.startswith(codes.LEGACY_CODE_BUCKET_PREFIX):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the group's code bucket {bucket} predates support for the original client; "
            "use `leruli list-codes` of leruli-prefect",
        )
    return bucket.removeprefix(codes.LEGACY_CODE_BUCKET_PREFIX)
