"""Whose turn it is to sweep: one server process at a time, when several share a PostgreSQL database.

Two sweepers that both saw a lost node's run would both write it off, and the second one's forced Scheduled
could undo a node's fresh claim of the requeued run (the job would then run twice). A transaction-level
advisory lock makes the sweeps of all processes take turns: the next sweep reads the states the last one
wrote. On SQLite there is only ever one server process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# Any fixed 64-bit number that nothing else on the database uses as an advisory lock key ("leruli-s").
SWEEP_LOCK_KEY = 0x6C6572756C692D73


@asynccontextmanager
async def sweep_turn(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Yields True when this process may sweep now (holding the turn until the block ends), else False."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection, connection.begin():
        taken = await connection.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY}
        )
        yield bool(taken)
