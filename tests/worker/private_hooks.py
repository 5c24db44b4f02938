"""The private hooks of Prefect's `BaseWorker` that `LeruliWorker` overrides, checked so that a Prefect
upgrade that renames one (or stops calling it) fails a test instead of silently changing what a node does."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from prefect.workers.base import BaseWorker

from leruli_prefect.worker.leruli_worker import LeruliWorker


def assert_hook_still_used(name: str, parameters: list[str], called_from: Callable[..., Any]) -> None:
    hook = getattr(BaseWorker, name)
    assert inspect.iscoroutinefunction(hook)
    assert list(inspect.signature(hook).parameters) == parameters
    assert name in inspect.getsource(called_from)
    assert getattr(LeruliWorker, name) is not hook
