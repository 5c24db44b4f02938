"""leruli-prefect: a multi-tenant job queue for scientific container jobs, built on Prefect 3.

The Python API is importable from here (`leruli_prefect.submit`, `run_job`, `LeruliCredentials`, ...). Its
names load on first use, so `import leruli_prefect` and the `leruli` command never import Prefect or boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY_NAMES = {
    "Job": "leruli_prefect.api",
    "JobResult": "leruli_prefect.api",
    "submit": "leruli_prefect.api",
    "status": "leruli_prefect.api",
    "wait": "leruli_prefect.api",
    "get": "leruli_prefect.api",
    "cancel": "leruli_prefect.api",
    "collect": "leruli_prefect.api",
    "run": "leruli_prefect.api",
    "record": "leruli_prefect.api",
    "JobRecord": "leruli_prefect.job_record",
    "JobView": "leruli_prefect.job_spec",
    "run_job": "leruli_prefect.flows",
    "submit_job": "leruli_prefect.flows",
    "wait_for_job": "leruli_prefect.flows",
    "collect_job": "leruli_prefect.flows",
    "LeruliCredentials": "leruli_prefect.blocks",
    "LeruliS3Storage": "leruli_prefect.blocks",
}
__all__ = [
    "Job",
    "JobRecord",
    "JobResult",
    "JobView",
    "LeruliCredentials",
    "LeruliS3Storage",
    "__version__",
    "cancel",
    "collect",
    "collect_job",
    "get",
    "record",
    "run",
    "run_job",
    "status",
    "submit",
    "submit_job",
    "wait",
    "wait_for_job",
]

if TYPE_CHECKING:
    from leruli_prefect.api import Job, JobResult, cancel, collect, get, run, status, submit, wait
    from leruli_prefect.blocks import LeruliCredentials, LeruliS3Storage
    from leruli_prefect.flows import collect_job, run_job, submit_job, wait_for_job
    from leruli_prefect.job_spec import JobView


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'leruli_prefect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
