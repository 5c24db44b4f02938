"""The gateway's load shedding with a stand-in app: past the bound, an at-once 503 with `Retry-After`.

The real gateway under a flood: tests/faults/test_gateway_flood.py.
"""

from __future__ import annotations

import asyncio

import httpx

from leruli_prefect.gateway.load_shedding import LoadShedding


def _slow_app(release: asyncio.Event):  # noqa: ANN202 - an ASGI app
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def _flood(paths: list[str], limit: int) -> list[httpx.Response]:
    release = asyncio.Event()
    shedding = LoadShedding(_slow_app(release), limit=limit)
    transport = httpx.ASGITransport(app=shedding)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        pending = [asyncio.create_task(client.get(path)) for path in paths]
        while shedding.in_flight < limit:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the others have been answered (or are waiting, if never shed)
        release.set()
        return await asyncio.gather(*pending)


def test_requests_past_the_bound_get_503_with_retry_after() -> None:
    responses = asyncio.run(_flood(["/v1/jobs"] * 5, limit=3))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 503, 503]
    busy = [response for response in responses if response.status_code == 503]
    assert all(response.headers["retry-after"] == "1" for response in busy)


def test_health_and_the_prefect_api_are_never_shed() -> None:
    paths = ["/v1/jobs"] * 2 + ["/v1/health", "/prefect/api/flow_runs/filter"]
    responses = asyncio.run(_flood(paths, limit=2))
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
