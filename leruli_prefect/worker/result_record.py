"""Writing a job's result record as its flow run's Prefect result, in the group's results bucket.

Prefect's own `ResultStore` writes it (JSON serializer, never pickle) through a prefect-aws `S3Bucket` built
from the node's keys; the record's metadata then names the group's saved `S3Bucket` block (made by the
gateway, holding no keys) so that the final state sent to the API references the record the way any Prefect
result is referenced (`storage_key` + `storage_block_id`). See `leruli_prefect.gateway.result_storage`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.results import ResultStore
from prefect.serializers import JSONSerializer
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters

from leruli_prefect.client import GatewayClient
from leruli_prefect.job_record import JobRecord, OutputFile, results_key
from leruli_prefect.storage.buckets import ensure_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from prefect.results import ResultRecord

    from leruli_prefect.job_spec import JobSpec
    from leruli_prefect.storage.checked_upload import FileDigest
    from leruli_prefect.worker.container_runner import ContainerOutcome
    from leruli_prefect.worker.node_config import NodeConfig


@dataclass(frozen=True)
class ResultStorage:
    """The group's results bucket and the id of the block that references it."""

    bucket: str
    block_document_id: UUID


_lock = threading.Lock()
_storage: dict[tuple[str, str], ResultStorage] = {}  # (gateway, group token) -> its answer, bucket made


def result_storage(config: NodeConfig, s3: S3Client) -> ResultStorage:
    """Ask the gateway once where records go, and make the bucket if this is the group's first record."""
    group = (config.gateway_url, config.group_token.get_secret_value())
    with _lock:
        if group not in _storage:
            with GatewayClient(config.gateway_url) as client:
                answer = client.node_result_storage(
                    group_token=config.group_token.get_secret_value(),
                    compute_secret=config.compute_secret.get_secret_value(),
                )
            ensure_bucket(s3, answer["bucket"])
            _storage[group] = ResultStorage(answer["bucket"], UUID(answer["block_document_id"]))
        return _storage[group]


def build_record(
    *,
    job_id: UUID,
    attempt: int,
    node: str,
    spec: JobSpec,
    outcome: ContainerOutcome,
    peak_memory_bytes: int | None,
    files: list[FileDigest],
    cancelled: bool,
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        attempt=attempt,
        node=node,
        image=spec.image,
        image_digest=outcome.image_id or "",
        exit_code=outcome.exit_code,
        oom_killed=outcome.oom_killed,
        timed_out=outcome.timed_out,
        cancelled=cancelled,
        started=outcome.started,
        ended=outcome.ended,
        runtime_s=outcome.runtime_s,
        peak_memory_bytes=peak_memory_bytes,
        files=[OutputFile(name=file.key, size=file.size, sha256=file.sha256) for file in files],
    )


async def persist_record(config: NodeConfig, storage: ResultStorage, record: JobRecord) -> ResultRecord[Any]:
    """Write the record to the results bucket; returns Prefect's record, to become the final state's data."""
    bucket = S3Bucket(
        bucket_name=storage.bucket,
        credentials=AwsCredentials(
            aws_access_key_id=config.s3_access,
            aws_secret_access_key=config.s3_secret,
            region_name="us-east-1",
            aws_client_parameters=AwsClientParameters(
                endpoint_url=config.s3_server, config={"s3": {"addressing_style": "path"}}
            ),
        ),
    )
    store = ResultStore(result_storage=bucket, serializer=JSONSerializer(), cache_result_in_memory=False)
    prefect_record = store.create_result_record(
        record.model_dump(mode="json"), key=results_key(record.job_id, record.attempt)
    )
    # The node's block is unsaved (it holds the node's keys); readers resolve the group's saved one.
    prefect_record.metadata.storage_block_id = storage.block_document_id
    await store.apersist_result_record(prefect_record)
    return prefect_record
