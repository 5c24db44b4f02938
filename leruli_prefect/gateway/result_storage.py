"""Each group's result storage: a Prefect `S3Bucket` block naming the group's results bucket, without keys.

A job's result record is a Prefect result: its flow run's final state carries Prefect's result metadata
(`storage_key`, `storage_block_id`), and the block it names says where the record is. The server holds no S3
key, so the block holds none either (nor an endpoint: each group may have its own S3); whoever reads a result
brings their own through boto3's environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_ENDPOINT_URL`). The gateway makes the block on first use, with an unguessable bucket name; the first
node to write a record creates the bucket with its keys.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.exceptions import ObjectNotFound

from leruli_prefect.job_record import RESULTS_BLOCK_PREFIX, ResultLocation

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

    from leruli_prefect.job_spec import JobView

_BLOCK_TYPE = "s3-bucket"
_creating = asyncio.Lock()  # one block per group, even when several nodes ask at once


@dataclass(frozen=True)
class GroupResultStorage:
    block_document_id: UUID
    block_document_name: str
    bucket: str


async def find(
    prefect: PrefectClient, group: str, cache: dict[str, GroupResultStorage]
) -> GroupResultStorage | None:
    """The group's result storage, or None if no job of the group has written a record yet."""
    if group in cache:
        return cache[group]
    try:
        document = await prefect.read_block_document_by_name(
            RESULTS_BLOCK_PREFIX + group, block_type_slug=_BLOCK_TYPE, include_secrets=False
        )
    except ObjectNotFound:
        return None
    cache[group] = GroupResultStorage(document.id, document.name or "", document.data["bucket_name"])
    return cache[group]


async def ensure(
    prefect: PrefectClient, group: str, cache: dict[str, GroupResultStorage]
) -> GroupResultStorage:
    """The group's result storage, made (block document and bucket name) on the first call."""
    found = await find(prefect, group, cache)
    if found is not None:
        return found
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    async with _creating:
        found = await find(prefect, group, cache)
        if found is not None:
            return found
        block = S3Bucket(
            bucket_name=f"leruli-results-{secrets.token_hex(16)}",
            credentials=AwsCredentials(
                region_name="us-east-1",
                # Path-style addressing, which every S3 server understands (virtual hosts need DNS).
                aws_client_parameters=AwsClientParameters(config={"s3": {"addressing_style": "path"}}),
            ),
        )
        try:
            await block.asave(RESULTS_BLOCK_PREFIX + group, client=prefect)
        except ValueError:
            pass  # another gateway made it in the meantime: use theirs
    found = await find(prefect, group, cache)
    if found is None:
        raise RuntimeError(f"the result storage block of group {group} was not saved")
    return found


StorageLookup = Callable[[], Awaitable["GroupResultStorage | None"]]


def reference_of(flow_run: Any) -> tuple[str, str] | None:
    """(storage key, block id) of the stored result the run's state references, if any.

    `flow_run` is a client flow run (its state data parsed as Prefect's `ResultRecordMetadata`) or a row of
    Prefect's ORM (the same as a plain dict)."""
    state = getattr(flow_run, "state", None)
    data = getattr(state, "data", None)
    if data is not None and not isinstance(data, dict) and hasattr(data, "storage_key"):
        data = {"storage_key": data.storage_key, "storage_block_id": data.storage_block_id}
    if not isinstance(data, dict) or not data.get("storage_key") or not data.get("storage_block_id"):
        return None
    return str(data["storage_key"]), str(data["storage_block_id"])


def location_of(
    reference: tuple[str, str] | None, storage: GroupResultStorage | None
) -> ResultLocation | None:
    """Where a referenced record is, if the reference names the group's own storage.

    A reference to any other block (another group's) is not shown: the record would not be the group's.
    (The guard refuses such states from nodes; an operator might still set one.)"""
    if reference is None or storage is None or reference[1] != str(storage.block_document_id):
        return None
    return ResultLocation(bucket=storage.bucket, key=reference[0])


async def with_locations(
    views: list[JobView], references: list[tuple[str, str] | None], lookup: StorageLookup
) -> list[JobView]:
    """The views with `result` set where their runs reference a record (the storage looked up only then)."""
    if not any(references):
        return views
    storage = await lookup()
    return [
        view.model_copy(update={"result": location_of(reference, storage)})
        for view, reference in zip(views, references, strict=True)
    ]
