"""The order in which a node tries to claim the runs it was offered: oldest first, spread among equals.

Every node polling a pool is offered the same oldest runs. If each tried the very first one, all of them
would race for one run per poll round (one wins, the others' Pending is refused and they wait for their next
poll): measured with 20 one-slot nodes, about one claim per round. So among the runs at the head of the queue
that ask for exactly what the first one asks (same cores, same memory: none of them can be unfair to another),
each node starts at a random one. A run that asks for something else is never overtaken by this: the spreading
stops at the first run that differs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

Offer = TypeVar("Offer")

SPREAD_WINDOW = 64  # at most this many equal runs at the head are shuffled in turn


def spread_among_equals(
    offered: Sequence[Offer],
    asked: Callable[[Offer], tuple[int, int]],
    *,
    window: int = SPREAD_WINDOW,
    rng: random.Random | None = None,
) -> list[Offer]:
    """`offered` with its head of equal asks rotated by a random offset; the rest in the order given.

    >>> spread_among_equals([1, 1, 1, 2], lambda o: (o, 0), rng=random.Random(1))
    [1, 1, 1, 2]
    """
    if not offered:
        return []
    head = asked(offered[0])
    equal = 1
    while equal < min(len(offered), window) and asked(offered[equal]) == head:
        equal += 1
    start = (rng or random).randrange(equal)
    return [*offered[start:equal], *offered[:start], *offered[equal:]]
