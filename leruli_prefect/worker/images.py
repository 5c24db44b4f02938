"""A job's image on this node: loaded from the group's code bucket when the node lacks it, digest checked.

A published code (`leruli publish-code`) is trusted by its image id alone: a local image of that name with
another id fails the job rather than run something else under the code's name. Images the group never
published (the operator's node-local ones) run as before.

Blocking calls (docker-py, boto3, HTTP); the worker runs `ensure_image` in a thread.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.logging import get_logger

from leruli_prefect.client import GatewayClient
from leruli_prefect.storage.code_archive import CodeArchiveError, check_archive, load_image
from leruli_prefect.storage.s3_client import make_s3_client
from leruli_prefect.storage.transfer import download_file
from leruli_prefect.worker.retries import Backoff, is_transient_gateway_error, retry_blocking

if TYPE_CHECKING:
    import docker

    from leruli_prefect.worker.node_config import NodeConfig

logger = get_logger("leruli.images")  # under Prefect's logging setup, so it reaches the node's log

# How long the group's code list is reused for an image the node holds: no request per job in a stream.
CODES_TTL_SECONDS = 10.0

_lock = threading.Lock()
_loading: dict[str, threading.Lock] = {}  # one download at a time per image, however many jobs wait for it
_codes_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # gateway url -> (fetched at, codes)
# One client per gateway for the node's life: a new httpx client builds an SSL context (certifi's bundle,
# tens of ms of CPU), which py-spy showed in every refresh of the code list.
_gateways: dict[str, GatewayClient] = {}


def ensure_image(engine: docker.DockerClient, config: NodeConfig, reference: str) -> None:
    """Make sure `reference` is on this node as the group published it; load it from the code bucket if not.

    Raises `CodeArchiveError` (the job fails with its message) when the archive or the local image does not
    match the published digest.
    """
    record = _published(config, reference, max_age=CODES_TTL_SECONDS if _has(engine, reference) else 0.0)
    if record is None:
        return  # not a published code: the node's own image, or missing (the container start says so)
    with _lock:
        loading = _loading.setdefault(reference, threading.Lock())
    with loading:  # a job that waited here finds the image its predecessor loaded
        if not _has(engine, reference):
            _fetch_and_load(engine, config, record)
        local_id = engine.images.get(reference).id
        if local_id != record["image_id"]:
            raise CodeArchiveError(
                f"this node holds another {reference} ({local_id[:19]}) than the group published "
                f"({record['image_id'][:19]}); the node's operator must remove it (`docker rmi {reference}`)"
            )


def _has(engine: docker.DockerClient, reference: str) -> bool:
    import docker.errors

    try:
        engine.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _published(config: NodeConfig, reference: str, *, max_age: float) -> dict[str, Any] | None:
    """The group's record of `reference`; the list is asked afresh unless younger than `max_age` seconds.

    A node that lacks the image always asks afresh: a code published a moment ago must not be missed.
    """
    now = time.monotonic()
    with _lock:
        fetched_at, codes = _codes_cache.get(config.gateway_url, (-math.inf, []))
    if now - fetched_at > max_age:
        codes = retry_blocking(  # a server restart must not fail the jobs starting meanwhile
            lambda: _ask_codes(config),
            transient=is_transient_gateway_error,
            service="gateway",
            what="asking for the group's codes",
            limit_seconds=config.api_retry_seconds,
            backoff=Backoff(first=1.0, longest=10.0),
        )
        with _lock:
            _codes_cache[config.gateway_url] = (now, codes)
    return next((code for code in codes if code["image"] == reference), None)


def _ask_codes(config: NodeConfig) -> list[dict[str, Any]]:
    with _lock:
        if config.gateway_url not in _gateways:
            _gateways[config.gateway_url] = GatewayClient(config.gateway_url)
        client = _gateways[config.gateway_url]
    return client.node_codes(  # httpx's client is thread-safe
        group_token=config.group_token.get_secret_value(),
        compute_secret=config.compute_secret.get_secret_value(),
    )


def _fetch_and_load(engine: docker.DockerClient, config: NodeConfig, record: dict[str, Any]) -> None:
    reference = record["image"]
    started = time.monotonic()
    s3 = make_s3_client(config.s3_server, config.s3_access, config.s3_secret.get_secret_value())
    scratch = config.data_dir / "codes"
    scratch.mkdir(parents=True, exist_ok=True)
    archive = scratch / f"{record['archive_sha256']}.{threading.get_ident()}.tar.gz"
    try:
        download_file(s3, record["bucket"], record["object_key"], archive)
        fetched = time.monotonic() - started
        check_archive(
            archive,
            reference=reference,
            image_id=record["image_id"],
            archive_sha256=record["archive_sha256"],
        )
        load_image(engine, archive, reference=reference, image_id=record["image_id"])
    finally:
        Path(archive).unlink(missing_ok=True)
    logger.info(
        "loaded %s (%s, %.1f MB) from the code bucket: fetched in %.1f s, checked and loaded in %.1f s",
        reference,
        record["image_id"][:19],
        record["size"] / 1e6,
        fetched,
        time.monotonic() - started - fetched,
    )
