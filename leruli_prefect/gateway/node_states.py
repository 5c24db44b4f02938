"""A node's proposed state, orchestrated in the gateway's process instead of through Prefect's HTTP stack.

A job makes three proposals (Pending, Running, its final state), each once through the guard and again
through Prefect's own ASGI stack (middleware, dependency injection, validation, encoding). The guard now
hands a node's proposal, once it has checked the caller, to `propose`, which does what Prefect's route
`POST /flow_runs/{id}/set_state` does: the flow policy and orchestration parameters Prefect's dependencies
provide, the request's API and client versions, one transaction, 201 for a new state and 200 otherwise, the
answer in Prefect's JSON. Two things are better for it than before:
- the run's fence (`run_fence`) is checked in the transaction that writes the state: no write-off of the
  node can come in between;
- a claim (an accepted Pending) gets its holder's labels in the same transaction: no run is ever Pending
  without a holder.
What it saves is measured in bench/RESULTS.md (row 2): most of a proposal's cost was Prefect's
orchestration itself, 10 to 21 SQL statements; a plain claim, Running or Completed is now written by
`plain_transitions` in 5 to 7 (the same rows and event), the rest still by Prefect's orchestration.

Left to Prefect: a proposal of Cancelling (its route also schedules a timeout check for it), and a body or
header Prefect would refuse (it answers with its own message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from fastapi import HTTPException
from prefect.server import models, schemas
from prefect.server.api.dependencies import get_prefect_client_version, provide_request_api_version
from prefect.server.api.server import is_client_retryable_exception
from prefect.server.database import provide_database_interface
from prefect.server.exceptions import ObjectNotFoundError
from prefect.server.orchestration.core_policy import CoreFlowPolicy
from prefect.server.orchestration.dependencies import (
    provide_flow_orchestration_parameters,
    provide_flow_policy,
)
from pydantic import ValidationError

from leruli_prefect.attempts import WORKER_NAME_HEADER
from leruli_prefect.gateway import plain_transitions, prefect_writes, run_fence
from leruli_prefect.gateway.asgi import Refused
from leruli_prefect.gateway.claim_labels import label_claimed_run
from leruli_prefect.gateway.job_reads import read_run_facts_in
from leruli_prefect.gateway.prefect_writes import busy_pause

if TYPE_CHECKING:
    from packaging.version import Version

logger = logging.getLogger(__name__)

_LEFT_TO_PREFECT = {"CANCELLING"}


@dataclass(frozen=True)
class Proposal:
    run_id: UUID
    state: schemas.actions.StateCreate
    force: bool
    api_version: Version | None
    client_version: str | None
    holder: str | None  # the proposing node's name (Prefect's worker sends it with every request)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def parse(run_id: UUID, body: bytes, headers: dict[str, str]) -> Proposal | None:
    """The proposal in a `set_state` request, or None when Prefect should answer it itself."""
    try:
        payload = json.loads(body)
        state = schemas.actions.StateCreate.model_validate(payload["state"])
        force = payload.get("force", False)
    except (ValueError, KeyError, TypeError, ValidationError):
        return None
    if not isinstance(force, bool) or state.type.value in _LEFT_TO_PREFECT:
        return None
    try:
        api_version = provide_request_api_version(headers.get("x-prefect-api-version"))
    except HTTPException:  # not x.y.z
        return None
    client_version = get_prefect_client_version(headers.get("user-agent"))
    return Proposal(run_id, state, force, api_version, client_version, headers.get(WORKER_NAME_HEADER))


async def propose(proposal: Proposal, *, lock: asyncio.Lock | None) -> Answer:
    """Orchestrate `proposal` as Prefect's route would, behind the run's fence (`run_fence`: `Refused`);
    an accepted claim gets its holder's labels.

    `lock` is the gateway's SQLite writer lock (None on PostgreSQL); a busy database is retried here, as
    `prefect_writes` retries Prefect's 503."""
    async with lock or contextlib.nullcontext():
        attempt = 0
        while True:
            try:
                return await _orchestrate(proposal)
            except Refused:
                raise
            except ObjectNotFoundError as exc:
                return _json(404, {"exception_message": str(exc)})
            except Exception as exc:
                if not is_client_retryable_exception(exc):
                    logger.exception("a node's proposed state failed")
                    return _json(500, {"exception_message": "Internal Server Error"})
                if attempt == prefect_writes.BUSY_RETRIES:
                    return _json(503, {"exception_message": "Service Unavailable"})
            await busy_pause(attempt)
            attempt += 1


async def _orchestrate(proposal: Proposal) -> Answer:
    parameters = await provide_flow_orchestration_parameters()
    parameters.update({"api-version": proposal.api_version})
    policy = await provide_flow_policy()
    right_now = datetime.now(UTC)
    db = provide_database_interface()
    claim = proposal.state.type == schemas.states.StateType.PENDING
    async with db.session_context(begin_transaction=True, with_for_update=True) as session:
        if not claim:  # checked in the transaction that writes: no write-off can come in between
            found = await read_run_facts_in(session, proposal.run_id, for_update=True)
            run_fence.check(found, proposal.holder, proposed=proposal.state.type.value)
        state = schemas.states.State.model_validate(proposal.state)
        result = None
        if not proposal.force and policy is CoreFlowPolicy:  # plain: its rules would only keep books
            result = await plain_transitions.write_plain(session, proposal.run_id, state)
        if result is None:
            result = await models.flow_runs.set_flow_run_state(
                session=session,
                flow_run_id=proposal.run_id,
                state=state,
                force=proposal.force,
                flow_policy=policy,
                orchestration_parameters=parameters,
                client_version=proposal.client_version,
            )
        accepted = result.status == schemas.responses.SetStateStatus.ACCEPT
        if accepted and claim and proposal.holder:
            await label_claimed_run(session, proposal.run_id, proposal.holder)
    created = result.state is not None and result.state.timestamp >= right_now
    return _json(201 if created else 200, result.model_dump(mode="json"))


def _json(status: int, content: Any) -> Answer:
    return Answer(status, json.dumps(content).encode())
