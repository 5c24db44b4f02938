"""Prefect tasks researchers call from their own `@flow`: `run_job` (submit, wait, download) and the steps.

from prefect import flow
from leruli_prefect.flows import run_job

@flow
def energies(molecules: dict[str, str]) -> dict[str, float]:
    futures = {name: run_job.submit({"mol.xyz": xyz}, "xtb", "6.5.1", "xtb mol.xyz", f"out/{name}")
               for name, xyz in molecules.items()}
    return {name: parse(future.result().read_text("joblog.txt")) for name, future in futures.items()}
"""

from __future__ import annotations

from leruli_prefect.flows.job_tasks import collect_job, run_job, submit_job, wait_for_job

__all__ = ["collect_job", "run_job", "submit_job", "wait_for_job"]
