"""Units of the node's outage handling (worker/retries.py) with fakes; real outages: tests/faults/."""

from __future__ import annotations

import logging

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from leruli_prefect.errors import StorageError, StorageUnavailableError
from leruli_prefect.worker.retries import (
    Backoff,
    GatewayLink,
    call_storage,
    is_transient_api_error,
    is_transient_storage_error,
)

QUICK = Backoff(first=0.01, longest=0.02, jitter=0)


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(status, request=request))


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def _wrapped(cause: Exception) -> StorageError:
    try:
        raise StorageError("cannot download") from cause
    except StorageError as exc:
        return exc


def test_backoff_doubles_up_to_its_longest() -> None:
    assert [Backoff(first=1, longest=4, jitter=0).delay(n) for n in range(5)] == [1, 2, 4, 4, 4]
    assert 0.8 <= Backoff(first=1, longest=4).delay(0) <= 1.2


def test_only_outages_of_the_gateway_are_retried() -> None:
    assert is_transient_api_error(httpx.ConnectError("refused"))
    assert is_transient_api_error(_status_error(503))
    assert not is_transient_api_error(_status_error(404))
    assert not is_transient_api_error(_status_error(409))
    assert not is_transient_api_error(_status_error(500))  # a bug answers the same next time


def test_only_outages_of_s3_are_retried() -> None:
    assert is_transient_storage_error(_wrapped(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")))
    assert is_transient_storage_error(_wrapped(_client_error("SlowDown", 503)))
    assert not is_transient_storage_error(_wrapped(_client_error("NoSuchKey", 404)))
    assert not is_transient_storage_error(_wrapped(_client_error("AccessDenied", 403)))
    assert not is_transient_storage_error(OSError(28, "No space left on device"))


def test_a_transfer_rides_out_a_short_outage() -> None:
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _wrapped(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
        return "done"

    assert call_storage(flaky, "fetching", limit_seconds=5, backoff=QUICK) == "done"
    assert len(attempts) == 3


def test_a_transfer_gives_up_with_storage_unavailable_past_the_limit() -> None:
    def away() -> None:
        raise _wrapped(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))

    with pytest.raises(StorageUnavailableError, match="^storage unavailable$"):
        call_storage(away, "uploading", limit_seconds=0.1, backoff=QUICK)


def test_a_refusal_is_not_retried() -> None:
    attempts = []

    def refused() -> None:
        attempts.append(1)
        raise _wrapped(_client_error("NoSuchBucket", 404))

    with pytest.raises(StorageError, match="cannot download"):
        call_storage(refused, "fetching", limit_seconds=5, backoff=QUICK)
    assert len(attempts) == 1


def test_the_gateway_link_retries_a_state_report_and_says_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.node")
    link = GatewayLink(logger, QUICK)
    attempts = []

    async def report() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise httpx.ConnectError("refused")
        return "accepted"

    with caplog.at_level(logging.INFO, logger="test.node"):
        assert anyio.run(lambda: link.call(report, "reporting a job", 10)) == "accepted"
    messages = [record.getMessage() for record in caplog.records]
    assert sum("lost the gateway while reporting a job" in m for m in messages) == 1
    assert sum("reconnected to the gateway after" in m for m in messages) == 1


def test_the_gateway_link_passes_a_refusal_at_once() -> None:
    link = GatewayLink(logging.getLogger("test.node"), QUICK)

    async def refused() -> None:
        raise _status_error(409)

    with pytest.raises(httpx.HTTPStatusError):
        anyio.run(lambda: link.call(refused, "reporting a job", 10))
    assert anyio.run(lambda: link.try_once(_unreachable, "asking for jobs")) is None


async def _unreachable() -> None:
    raise httpx.ConnectError("refused")
