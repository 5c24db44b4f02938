"""What a job is, shared by the client, the gateway and the worker: the parameters of a `leruli_job` flow run.

A group is a Prefect work pool `leruli-<group>` holding one deployment of the `leruli_job` flow; a job is a
flow run of that deployment and these are its parameters.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from leruli_prefect.job_record import ResultLocation

FLOW_NAME = "leruli_job"
OWNER_TAG_PREFIX = "leruli-owner:"
# Set on a job before its cancel, and never removed: a node that claimed the job in the same instant (when
# Prefect would let its Running proposal replace the Cancelled state) still sees it and stops the job.
CANCEL_TAG = "leruli-cancel-requested"
GROUP_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,40}$"
# Bucket names are S3-legal and unguessable: `leruli-` and 32 hex digits (128 random bits).
BUCKET_PATTERN = r"^leruli-[0-9a-f]{32}$"
# The original Leruli client names a job's bucket with a uuid4 (122 random bits, as unguessable); only its
# jobs use these (gateway/routes/legacy_v22_1.py).
LEGACY_BUCKET_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
# A job's bucket is either. BUCKET_PATTERN alone still tells bucket names from job ids, which are uuids too.
JOB_BUCKET_PATTERN = f"{BUCKET_PATTERN}|{LEGACY_BUCKET_PATTERN}"
# `name:version`, the way the original Leruli service named its codes (`psi4:1.3.2`, `xtb:6.5.1`).
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,127}:[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def pool_name(group: str) -> str:
    """The Prefect work pool of a group: `pool_name("qm") == "leruli-qm"`."""
    return f"leruli-{group}"


def deployment_name(group: str) -> str:
    return f"leruli-{group}"


def owner_tag(user: str) -> str:
    return f"{OWNER_TAG_PREFIX}{user}"


class JobSpec(BaseModel):
    """One container job: which image runs which command, with which limits, on which bucket's inputs."""

    image: str = Field(description="Image as `name:version`, e.g. `psi4:1.3.2`.", pattern=IMAGE_PATTERN)
    command: str = Field(
        description="Shell command run in /rundir by `run.sh`.", min_length=1, max_length=20_000
    )
    cores: int = Field(default=1, ge=1, le=1024, description="Cores; also OMP_NUM_THREADS and kin.")
    memory_mb: int = Field(default=4000, ge=16, le=4_194_304, description="Memory limit in MB.")
    time_limit_s: int = Field(default=86_400, ge=1, le=31 * 86_400, description="Wall-time limit in seconds.")
    bucket: str = Field(description="The job's S3 bucket holding `run.tgz`.", pattern=JOB_BUCKET_PATTERN)

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the command must not contain NUL characters")
        return value


class JobView(BaseModel):
    """A job as the gateway reports it."""

    id: UUID
    name: str
    state: str = Field(description="Prefect state name: Scheduled, Pending, Running, Completed, Failed, ...")
    reason: str | None = Field(
        default=None, description="Why the job ended as it did, when it did not complete."
    )
    owner: str | None
    image: str | None
    command: str | None
    cores: int | None
    memory_mb: int | None
    time_limit_s: int | None
    bucket: str | None
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    result: ResultLocation | None = Field(
        default=None,
        description="Where the job's result record is (the group's results bucket and key), once it has one",
    )


def is_valid_group_name(name: str) -> bool:
    return re.fullmatch(GROUP_NAME_PATTERN, name) is not None
