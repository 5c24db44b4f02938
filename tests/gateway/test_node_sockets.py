"""Which node websockets a rotation closes: those opened with a secret that is no longer their group's.

Through real server processes: tests/gateway/test_prefect_guard.py (one process) and
tests/gateway/test_two_servers.py (a rotation through another process).
"""

from __future__ import annotations

from leruli_prefect.gateway.node_sockets import NodeSockets


def test_only_sockets_of_a_changed_or_vanished_secret_are_revoked() -> None:
    sockets = NodeSockets()
    kept = sockets.register(1, "hash-a")
    rotated = sockets.register(1, "hash-old")
    other_group = sockets.register(2, "hash-b")
    gone_group = sockets.register(3, "hash-c")

    assert sockets.revoke_changed({1: "hash-a", 2: "hash-b"}) == 2
    assert (kept.is_set(), rotated.is_set(), other_group.is_set(), gone_group.is_set()) == (
        False,
        True,
        False,
        True,
    )
    assert sorted(sockets.open_groups()) == [1, 2]
    assert sockets.open_count(1) == 1
    assert sockets.revoke_changed({1: "hash-a", 2: "hash-b"}) == 0


def test_unregistered_sockets_leave_no_group_behind() -> None:
    sockets = NodeSockets()
    event = sockets.register(1, "hash-a")
    sockets.unregister(1, event)
    assert sockets.open_groups() == []
    assert sockets.revoke(1) == 0
