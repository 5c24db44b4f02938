"""Request and response bodies of the /v1 REST API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from leruli_prefect.job_spec import GROUP_NAME_PATTERN, JobSpec, JobView

# The two halves of a job's `image` (job_spec.IMAGE_PATTERN): a code is what a job names.
CODE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,127}$"
CODE_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class GroupCreate(BaseModel):
    name: str = Field(pattern=GROUP_NAME_PATTERN, description="Lowercase letters, digits and dashes.")
    admin_name: str = Field(default="admin", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")


class GroupCreated(BaseModel):
    """Shown once: the gateway keeps only hashes of these secrets."""

    group: str
    work_pool: str
    admin_name: str
    group_token: str
    api_secret: str
    compute_secret: str


class JobSubmit(JobSpec):
    """A job to create; its bucket must already hold `run.tgz`."""

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Resubmitting with the same key (per group) answers the first job, not a second one.",
    )


class JobBatch(BaseModel):
    jobs: list[JobSubmit] = Field(min_length=1, max_length=1000)


class JobCreated(BaseModel):
    id: UUID
    name: str
    existed: bool = Field(description="True when the idempotency key named an earlier job, which is answered")


class JobBatchCreated(BaseModel):
    jobs: list[JobCreated] = Field(description="One entry per submitted job, in the order submitted")


class JobLookup(BaseModel):
    ids: list[UUID] = Field(min_length=1, max_length=200)


class RunWatch(BaseModel):
    ids: list[UUID] = Field(min_length=1, max_length=1000)


class WatchedRun(BaseModel):
    """What a node watches of a run it holds: a cancel (state, message, tags) and a write-off (labels)."""

    id: UUID
    state_type: str | None = Field(description="Prefect's state type, e.g. RUNNING")
    state_message: str | None
    labels: dict[str, object]
    tags: list[str]


class WatchedRuns(BaseModel):
    runs: list[WatchedRun]


class JobList(BaseModel):
    jobs: list[JobView]


class WhoAmI(BaseModel):
    kind: str = Field(description="user, group (token), compute (node) or operator")
    group: str | None
    user: str | None
    is_admin: bool
    work_pool: str | None


class UserCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$", description="Handle to revoke it"
    )
    admin: bool = Field(default=False, description="An admin can add and disable users and rotate secrets")


class UserCreated(BaseModel):
    """Shown once: the API secret cannot be read again."""

    name: str
    is_admin: bool
    api_secret: str


class ApiSecret(BaseModel):
    """Shown once: the user's new API secret; the previous one is refused from the very next request."""

    name: str
    api_secret: str


class UserRoleUpdate(BaseModel):
    is_admin: bool


class UserView(BaseModel):
    name: str
    is_admin: bool
    disabled: bool
    created: datetime
    disabled_at: datetime | None


class UserList(BaseModel):
    users: list[UserView]


class ComputeSecret(BaseModel):
    """Shown once: nodes need it (with the group token) to attach; the previous one stops working at once."""

    compute_secret: str


class PruneGrant(BaseModel):
    """The bucket the caller may now delete with their own S3 keys (the server holds none)."""

    job_id: UUID
    bucket: str


class AuditView(BaseModel):
    at: datetime
    actor: str
    action: str
    outcome: str
    detail: str
    source: str


class AuditLog(BaseModel):
    entries: list[AuditView]


class CodeBucketView(BaseModel):
    """The group's code bucket; publishers create it in S3 with their own keys (the server holds none)."""

    bucket: str


class CodePublish(BaseModel):
    """A code whose archive the caller has just uploaded to the group's code bucket."""

    name: str = Field(pattern=CODE_NAME_PATTERN, description="The image name, e.g. `psi4`")
    version: str = Field(pattern=CODE_VERSION_PATTERN, description="The image tag, e.g. `1.3.2`")
    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="`docker image inspect`'s Id")
    archive_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the uploaded archive")
    object_key: str = Field(min_length=1, max_length=300, description="The archive's key in the code bucket")
    size: int = Field(ge=1, description="The archive's size in bytes")


class CodeView(BaseModel):
    name: str
    version: str
    image: str = Field(description="`name:version`, what jobs name")
    image_id: str
    archive_sha256: str
    bucket: str
    object_key: str
    size: int
    published_by: str
    published_at: datetime


class CodeList(BaseModel):
    codes: list[CodeView]


class ResultStorageView(BaseModel):
    """Where the group's result records go: a bucket (nodes create it with their own keys) and the Prefect
    `S3Bucket` block that final states reference (it holds no keys)."""

    bucket: str
    block_document_id: UUID
    block_document_name: str
