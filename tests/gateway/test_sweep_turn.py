"""Sweeps of server processes that share a PostgreSQL database take turns (a real PostgreSQL, no server)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from leruli_prefect.gateway.db import make_engine
from leruli_prefect.gateway.sweep_turn import sweep_turn
from tests import stack


@pytest.fixture(scope="module")
def database() -> Iterator[stack.PostgresDatabase]:
    with stack.PostgresDatabase.create(f"leruli_turn_{secrets.token_hex(4)}") as created:
        yield created


def test_one_sweep_at_a_time_and_the_turn_passes_on(database: stack.PostgresDatabase) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        # Two engines: two server processes, each with its own connections.
        first, second = make_engine(database.url), make_engine(database.url)
        try:
            async with sweep_turn(first) as first_turn:
                async with sweep_turn(second) as second_turn_meanwhile:
                    pass
            async with sweep_turn(second) as second_turn_after:
                pass
            return first_turn, second_turn_meanwhile, second_turn_after
        finally:
            await first.dispose()
            await second.dispose()

    assert asyncio.run(scenario()) == (True, False, True)


def test_on_sqlite_the_only_process_always_sweeps(tmp_path) -> None:  # noqa: ANN001
    async def scenario() -> tuple[bool, bool]:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
        try:
            async with sweep_turn(engine) as outer, sweep_turn(engine) as inner:
                return outer, inner
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == (True, True)
