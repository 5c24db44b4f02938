"""A node's poll on SQLite: Prefect's own query, with the pool's filter where SQLite can use it.

Prefect's SQLite query for `POST /work_pools/{name}/get_scheduled_flow_runs` ranks every Scheduled run of
every pool (a window function over all of them, `json_extract` on each) before it keeps the asking pool's:
with 10,000 jobs queued in one group, each poll of another group's node cost the server tens of ms of CPU,
four times a second per idle node, and a status read queued behind them (bench/RESULTS.md, row 6). Its
PostgreSQL query filters per queue first and is not touched.

This module goes below Prefect's public classes: it renders Prefect's own template with one condition more
inside its inner query (the runs of the asked pools' queues only; the ranks within those queues, and so the
answer, are unchanged). It is the only module that does so; it refuses to load when Prefect's template is
not the one it was written against, and tests/gateway/test_scheduled_runs_query.py proves the answers equal
Prefect's own.
"""

from __future__ import annotations

import hashlib
from typing import Any

import prefect
from jinja2 import ChoiceLoader, DictLoader
from prefect.server.database import query_components

PINNED_PREFECT = "3.9."
PREFECT_TEMPLATE = "sqlite/get-runs-from-worker-queues.sql.jinja"
# sha256 of Prefect 3.9.1's template: any change to it must be read before this module is trusted again.
PREFECT_TEMPLATE_SHA256 = "ba7f2fe48dca63cf42335c969a82ff357477e875b46fc6ee106e71cd88c0c5ed"
OUR_TEMPLATE = "leruli/sqlite-get-runs-from-worker-queues.sql.jinja"

# Inside the inner query, right after its state condition: only runs of the asked queues or pools.
_ANCHOR = "WHERE fr.state_type = 'SCHEDULED'\n"
_POOL_FILTER = (
    "{% if work_queue_ids %}\n"
    "            AND fr.work_queue_id IN :work_queue_ids\n"
    "{% endif %}\n"
    "{% if work_pool_ids %}\n"
    "            AND fr.work_queue_id IN (SELECT id FROM work_queue WHERE work_pool_id IN :work_pool_ids)\n"
    "{% endif %}\n"
)


def prefect_template_source() -> str:
    loader = query_components.jinja_env.loader
    assert loader is not None
    source, _, _ = loader.get_source(query_components.jinja_env, PREFECT_TEMPLATE)
    return source


def pool_filtered_source(source: str) -> str:
    """Prefect's template with the pool filter inside its inner query."""
    if hashlib.sha256(source.encode()).hexdigest() != PREFECT_TEMPLATE_SHA256 or source.count(_ANCHOR) != 1:
        raise ImportError(
            f"leruli_prefect.gateway.scheduled_runs_query is written for Prefect 3.9.1's {PREFECT_TEMPLATE},"
            f" and Prefect {prefect.__version__} has another: read it again before using this module"
        )
    return source.replace(_ANCHOR, _ANCHOR + _POOL_FILTER)


def install() -> None:
    """Make Prefect's SQLite queries use the pool-filtered template (idempotent; PostgreSQL is untouched)."""
    if not prefect.__version__.startswith(PINNED_PREFECT):  # pragma: no cover - guards an upgrade
        raise ImportError(f"scheduled_runs_query is written for Prefect {PINNED_PREFECT}x")
    env = query_components.jinja_env
    if isinstance(env.loader, ChoiceLoader):
        return
    ours = DictLoader({OUR_TEMPLATE: pool_filtered_source(prefect_template_source())})
    env.loader = ChoiceLoader([ours, env.loader])  # type: ignore[list-item]
    # The property Prefect's SQLite components name their template by (see the module's docstring).
    sqlite_components: Any = query_components.AioSqliteQueryComponents
    sqlite_components._get_scheduled_flow_runs_from_work_pool_template_path = property(
        lambda self: OUR_TEMPLATE
    )
