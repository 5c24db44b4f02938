"""The heap set up for serving: later garbage is still collected; the server and a node freeze theirs."""

from __future__ import annotations

import gc
import re
import time
import weakref

from leruli_prefect.serving_heap import YOUNG_COLLECTION_ALLOCATIONS, prepare_heap_for_serving
from tests import stack

# A started server or node holds hundreds of thousands of objects; a freeze that took far fewer ran too early.
LOADED_PROCESS_OBJECTS = 100_000
NODE_WARM_UP_S = 60


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_freeze_keeps_startup_cycles_and_collects_later_ones() -> None:
    startup = _Cycle()
    startup_alive = weakref.ref(startup)
    thresholds = gc.get_threshold()
    try:
        assert prepare_heap_for_serving() == gc.get_freeze_count() > 0
        assert gc.isenabled()
        assert gc.get_threshold() == (YOUNG_COLLECTION_ALLOCATIONS, *thresholds[1:])
        later_alive = weakref.ref(_Cycle())  # unreachable at once: only a collection frees it
        del startup  # unreachable too, but frozen: the price of the freeze, paid for startup objects only
        gc.collect()
        assert later_alive() is None
        assert startup_alive() is not None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    gc.collect()
    assert startup_alive() is None


def _frozen_count(log: str) -> int | None:
    found = re.findall(r"(\d+) startup objects kept from collections", log)
    return int(found[-1]) if found else None


def test_the_server_and_a_node_freeze_their_startup_heaps(
    server: stack.Server, alpha_node: stack.Process
) -> None:
    assert (_frozen_count(server.process.log_text()) or 0) > LOADED_PROCESS_OBJECTS
    deadline = time.monotonic() + NODE_WARM_UP_S  # the node freezes after its warm-up, while it serves
    while _frozen_count(alpha_node.log_text()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (_frozen_count(alpha_node.log_text()) or 0) > LOADED_PROCESS_OBJECTS, alpha_node.log_text()[-2000:]
