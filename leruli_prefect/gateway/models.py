"""Request and response bodies of the /v1 REST API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from leruli_prefect.job_spec import GROUP_NAME_PATTERN, JobSpec, JobView


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


class JobList(BaseModel):
    jobs: list[JobView]


class WhoAmI(BaseModel):
    kind: str = Field(description="user, group (token), compute (node) or operator")
    group: str | None
    user: str | None
    is_admin: bool
    work_pool: str | None
