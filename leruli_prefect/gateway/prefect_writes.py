"""Sending requests to the embedded Prefect server so that SQLite's single writer is not a source of errors.

On SQLite a write that collides with another writer's fails at once (SQLITE_BUSY on a deferred transaction's
upgrade) instead of waiting, and Prefect answers 503. Under a burst of node traffic its client's few retries
were not always enough: claimed runs ended Crashed. So every request the guard passes to Prefect (nodes' and
operators') goes through `send_to_prefect`: writing requests one at a time when a lock is given (SQLite), and
a 503 retried here, before anything reached the caller. A 503 means Prefect wrote nothing: a retry is safe.
The gateway's own in-process client is not routed through here (its client retries 503 itself).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BUSY_RETRIES = 8
MAX_BODY = 8 * 1024 * 1024


async def send_to_prefect(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, lock: asyncio.Lock | None
) -> None:
    if lock is None or scope.get("method") == "GET":
        return await _retrying_busy(app, scope, receive, send)
    async with lock:
        return await _retrying_busy(app, scope, receive, send)


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes | None:
    """The whole request body, or None when it is larger than `limit`."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _retrying_busy(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    if body is None:
        return await _too_large(send)
    for attempt in range(BUSY_RETRIES + 1):
        last = attempt == BUSY_RETRIES
        start: Message | None = None

        async def hold_back_busy(message: Message, last: bool = last) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            if start is not None and (start["status"] != 503 or last):
                await send(message)

        try:
            # A copy each time: Starlette's routing writes into the scope (root_path, route), and a second
            # pass over a scope the first pass changed would no longer find Prefect's /api mount (404).
            await app(dict(scope), replay(body, receive), hold_back_busy)
        except Exception:
            # Prefect answers a busy database with 503 and then re-raises for the server's log.
            if last or start is None or start["status"] != 503:
                raise
        if start is None or start["status"] != 503 or last:
            return
        await busy_pause(attempt)


async def busy_pause(attempt: int) -> None:
    """The wait before retrying a write the busy database refused for the `attempt`th time (from 0)."""
    await asyncio.sleep(min(0.1 * 2**attempt, 2.0) * (0.5 + random.random()))


async def _too_large(send: Send) -> None:
    body = json.dumps({"detail": "request body too large"}).encode()
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
