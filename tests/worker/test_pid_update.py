"""A node sends no update that would only record a container's name (`worker/pid_update.py`)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from leruli_prefect.worker.pid_update import without_infrastructure_pid

RUN = uuid.uuid4()


@pytest.mark.anyio
async def test_only_an_update_of_the_infrastructure_pid_alone_is_left_out() -> None:
    sent: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def update_flow_run(*args: Any, **changes: Any) -> str:
        sent.append((args, changes))
        return "sent"

    update = without_infrastructure_pid(update_flow_run)
    # As Prefect's worker calls it, and positionally.
    assert await update(flow_run_id=RUN, infrastructure_pid="leruli-job-1") is None
    assert await update(RUN, infrastructure_pid="leruli-job-1") is None
    assert sent == []

    assert await update(RUN, tags=["x"]) == "sent"
    assert await update(flow_run_id=RUN, name="n", infrastructure_pid="leruli-job-1") == "sent"
    assert sent == [((RUN,), {"tags": ["x"]}), ((), {"flow_run_id": RUN, "name": "n"})]
