"""Riding out outages of what a node depends on: the gateway (Prefect API) and S3.

A server restart or an S3 blink must not lose a job or its outputs. What a node has to say to the server (a
job's Running and final states, its heartbeat, its request for work) is retried with backoff until the
gateway is back (a final state without a time limit, the rest within a generous bound); S3 transfers are
retried within the node's `storage_retry_seconds`, past which the job ends Failed with `storage unavailable`
(never Completed without its outputs). Only errors that say "not reachable now" are retried; a refusal (404,
403, 409) is an answer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import httpx
from prefect.logging import get_logger

from leruli_prefect.errors import GatewayError, StorageError, StorageUnavailableError

# Under Prefect's logger tree: Prefect's logging set-up disables plain module loggers made before it runs.
logger = get_logger("leruli.retries")

T = TypeVar("T")

_RETRIED_STATUSES = frozenset({408, 429, 502, 503, 504})  # not 500: a bug, not an outage
_RETRIED_S3_CODES = frozenset({"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError"})


@dataclass(frozen=True)
class Backoff:
    """Delays that double from `first` up to `longest`, each jittered by ±20 % so nodes do not march in step.

    >>> [round(Backoff(first=1, longest=4, jitter=0).delay(n)) for n in range(4)]
    [1, 2, 4, 4]
    """

    first: float = 0.5
    longest: float = 10.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        base = min(self.longest, self.first * 2 ** min(failures, 32))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


def is_transient_api_error(exc: BaseException) -> bool:
    """The gateway cannot be reached or is restarting: no answer, or a 502/503/504/408/429 status."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in _RETRIED_STATUSES


def is_transient_storage_error(exc: BaseException) -> bool:
    """S3 cannot be reached or is overloaded (its cause, for our own `StorageError`), as opposed to an answer
    such as NoSuchKey or AccessDenied."""
    from boto3.exceptions import RetriesExceededError
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError
    from urllib3.exceptions import HTTPError

    cause = exc.__cause__ if isinstance(exc, StorageError) and exc.__cause__ is not None else exc
    # A download cut short (IncompleteReadError, urllib3's errors while streaming) is S3 going away too.
    transient = ConnectionError | HTTPClientError | RetriesExceededError | IncompleteReadError | HTTPError
    if isinstance(cause, transient):
        return True
    if isinstance(cause, ClientError):
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or cause.response.get("Error", {}).get("Code") in _RETRIED_S3_CODES
    return False


class GatewayLink:
    """The node's link to the gateway: says in the log when it breaks and when it is back, and backs off.

    Shared by the node's loops (asking for work, heartbeats) and its jobs' state reports, so one outage
    gives one "lost" and one "reconnected" line however many callers noticed it.
    """

    def __init__(self, node_logger: logging.Logger | logging.LoggerAdapter, backoff: Backoff) -> None:
        self._logger = node_logger
        self._backoff = backoff
        self._down_since: float | None = None
        self._failures = 0

    def _broken(self, what: str, exc: BaseException) -> float:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._failures = 0
            self._logger.warning("lost the gateway while %s (%s); reconnecting with backoff", what, exc)
        delay = self._backoff.delay(self._failures)
        self._failures += 1
        self._logger.info("gateway unreachable for %.0f s; %s again in %.1f s", self.down_for(), what, delay)
        return delay

    def _working(self) -> None:
        if self._down_since is not None:
            self._logger.warning("reconnected to the gateway after %.1f s", self.down_for())
            self._down_since = None

    def down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    async def try_once(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        """One attempt of a call that a loop repeats anyway: on an outage, back off and return None."""
        try:
            result = await call()
        except Exception as exc:
            if not is_transient_api_error(exc):
                raise
            await anyio.sleep(self._broken(what, exc))
            return None
        self._working()
        return result

    async def call(self, call: Callable[[], Awaitable[T]], what: str, limit_seconds: float) -> T:
        """A call that must get through (a job's state): retried with backoff for up to `limit_seconds`."""
        started = time.monotonic()
        while True:
            try:
                result = await call()
            except Exception as exc:
                if not is_transient_api_error(exc) or time.monotonic() - started > limit_seconds:
                    raise
                await anyio.sleep(self._broken(what, exc))
                continue
            self._working()
            return result


class TransferStopped(Exception):
    """A retried transfer was told to stop waiting (`retry_blocking`'s `stop`)."""


def is_transient_gateway_error(exc: BaseException) -> bool:
    """Our own gateway client's error for "not reachable now" (no answer, or a 502/503/504)."""
    return isinstance(exc, GatewayError) and (exc.status == 0 or exc.status in _RETRIED_STATUSES)


def retry_blocking(
    call: Callable[[], T],
    *,
    transient: Callable[[BaseException], bool],
    service: str,
    what: str,
    limit_seconds: float,
    backoff: Backoff,
    log: logging.Logger | logging.LoggerAdapter = logger,
    stop: threading.Event | None = None,
) -> T:
    """Run a blocking call, retrying it with backoff while `transient` calls its error an outage of `service`.

    Past `limit_seconds` of outage the last error is raised; other errors pass at once. The call must be safe
    to repeat from its start. Once `stop` is set (the job is not the node's to run any more) the waiting ends
    at once with `TransferStopped`.
    """
    first_failure: float | None = None
    failures = 0
    while True:
        if stop is not None and stop.is_set():
            raise TransferStopped(f"stopped {what}: the job is not this node's to run any more")
        try:
            result = call()
        except Exception as exc:
            if not transient(exc):
                raise
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if now - first_failure >= limit_seconds:
                log.warning(
                    "%s unreachable for %.0f s while %s: giving up", service, now - first_failure, what
                )
                raise
            delay = min(backoff.delay(failures), first_failure + limit_seconds - now)
            failures += 1
            log.warning("%s unreachable while %s (%s); retrying in %.1f s", service, what, exc, delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            continue
        if first_failure is not None:
            log.warning(
                "%s reachable again after %.1f s (%s)", service, time.monotonic() - first_failure, what
            )
        return result


def call_storage(
    call: Callable[[], T],
    what: str,
    limit_seconds: float,
    backoff: Backoff | None = None,
    log: logging.Logger | logging.LoggerAdapter = logger,
    stop: threading.Event | None = None,
) -> T:
    """Run a blocking S3 transfer, retrying it with backoff while S3 is unreachable.

    Raises `StorageUnavailableError` once S3 has been away for `limit_seconds`; other errors pass at once.
    The transfer must be safe to repeat from its start (a fresh download, idempotent uploads).
    """
    try:
        return retry_blocking(
            call,
            transient=is_transient_storage_error,
            service="S3",
            what=what,
            limit_seconds=limit_seconds,
            backoff=backoff or Backoff(first=0.5, longest=15.0),
            log=log,
            stop=stop,
        )
    except Exception as exc:
        if is_transient_storage_error(exc):
            raise StorageUnavailableError() from exc
        raise
