"""Nodes start their claims at different runs among equal ones at the head of the queue, never past others."""

from __future__ import annotations

import random

from leruli_prefect.worker.claim_order import spread_among_equals


def _asked(offer: tuple[str, int]) -> tuple[int, int]:
    return offer[1], 100


def test_equal_runs_at_the_head_are_started_at_different_places() -> None:
    offered = [(f"run{i}", 1) for i in range(20)]
    rng = random.Random(3)
    firsts = {spread_among_equals(offered, _asked, rng=rng)[0] for _ in range(200)}
    assert len(firsts) == 20  # twenty nodes would not all race for run0
    for _ in range(50):
        order = spread_among_equals(offered, _asked, rng=rng)
        assert sorted(order) == sorted(offered)  # a rotation: nothing lost, nothing doubled
        start = offered.index(order[0])
        assert order == offered[start:] + offered[:start]


def test_a_run_that_asks_for_more_is_never_overtaken_by_the_spreading() -> None:
    offered = [("small0", 1), ("small1", 1), ("big", 2), ("small2", 1)]
    rng = random.Random(5)
    for _ in range(100):
        order = spread_among_equals(offered, _asked, rng=rng)
        assert order[2:] == [("big", 2), ("small2", 1)]
    assert spread_among_equals([("big", 2), ("small", 1)], _asked, rng=rng) == [("big", 2), ("small", 1)]
    assert spread_among_equals([], _asked) == []


def test_only_the_window_is_spread() -> None:
    offered = [(f"run{i}", 1) for i in range(10)]
    rng = random.Random(9)
    for _ in range(100):
        assert spread_among_equals(offered, _asked, window=3, rng=rng)[3:] == offered[3:]
