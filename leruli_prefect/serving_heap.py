"""How a long-running process (server, node) sets up Python's garbage collector once it has started.

Python collects reference cycles in three generations, the youngest after every 700 net allocations of
tracked objects. Two things made that costly here:

- Startup objects: a server holds about 620,000 once Prefect's app, its schemas and SQLAlchemy's metadata
  are loaded, and each full (generation 2) collection walked them all: 290-400 ms of stopped event loop,
  twice in 15 s of batch submissions (the first batch of 1,000 jobs took 1.0 s instead of 0.4 s). Nearly all
  of them live until the process ends, so they are collected once and moved to the permanent generation
  (`gc.freeze`), which no collection walks: a full collection then took 20-30 ms.
- Frequency: a server's requests allocate so much that, frozen, it still ran about 2,280 young and 15 full
  collections after its startup (2.4 s of CPU) for the 100 jobs of bench row 2, and the node 857 young and 7
  full (1.05 s with its startup). With the youngest generation collected every
  `YOUNG_COLLECTION_ALLOCATIONS` allocations instead: the server 50 young and no full one (0.64 s), the node
  21 and 1 (0.60 s with its startup).
  Only cyclic garbage waits longer for its collection; everything else is freed when its last reference goes.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_ALLOCATIONS = 20_000


def prepare_heap_for_serving() -> int:
    """Collect the startup garbage, exempt everything still alive from later collections, and collect the
    youngest generation less often; returns how many objects were frozen.

    Call once, when the process has started and before it serves. Objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, middle, oldest)
    return gc.get_freeze_count()
