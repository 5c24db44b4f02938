"""Result storage: where a group's result records go (nodes ask before writing one; members may read it)."""

from __future__ import annotations

from fastapi import APIRouter

from leruli_prefect.gateway import result_storage
from leruli_prefect.gateway.deps import MemberOrNodeDep, StateDep, caller_group
from leruli_prefect.gateway.models import ResultStorageView

router = APIRouter(tags=["results"])


@router.get("/results/storage")
async def read_result_storage(caller: MemberOrNodeDep, state: StateDep) -> ResultStorageView:
    """The group's results bucket and the Prefect block final states reference; made on the first call."""
    group = caller_group(caller)
    storage = await result_storage.ensure(state.prefect, group.name, state.result_storages)
    return ResultStorageView(
        bucket=storage.bucket,
        block_document_id=storage.block_document_id,
        block_document_name=storage.block_document_name,
    )
