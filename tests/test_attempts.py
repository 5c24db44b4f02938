"""The attempt labels of a job and the fence they make (pure functions, no server)."""

from __future__ import annotations

from leruli_prefect.attempts import (
    ATTEMPT_LABEL,
    HOLDER_LABEL,
    attempt_of,
    is_written_off,
    lost_holders,
    write_off_labels,
)


def test_a_new_run_is_on_its_first_attempt_and_fences_nobody() -> None:
    labels = {HOLDER_LABEL: "node-a"}
    assert attempt_of(labels) == 1
    assert not is_written_off(labels, "node-a") and not is_written_off(labels, None)


def test_write_off_records_the_holder_blanks_it_and_opens_the_next_attempt() -> None:
    labels = {HOLDER_LABEL: "node-a"}
    labels.update(write_off_labels(labels, "node-a", requeue=True))
    assert attempt_of(labels) == 2 and lost_holders(labels) == {"node-a"}
    assert labels[HOLDER_LABEL] == ""
    assert is_written_off(labels, "node-a")
    assert not is_written_off(labels, "node-b")  # never lost it: may claim it


def test_the_last_attempt_is_not_requeued() -> None:
    labels = {HOLDER_LABEL: "node-b", ATTEMPT_LABEL: 3}
    written = write_off_labels(labels, "node-b", requeue=False)
    assert ATTEMPT_LABEL not in written and written["leruli.lost.3"] == "node-b"


def test_a_node_that_lost_a_run_and_claims_it_again_holds_it() -> None:
    labels = {HOLDER_LABEL: "node-a"}
    labels.update(write_off_labels(labels, "node-a", requeue=True))
    labels[HOLDER_LABEL] = "node-a"  # its new claim labels the run again
    assert not is_written_off(labels, "node-a")
    labels[HOLDER_LABEL] = "node-b"  # or another node's claim
    assert is_written_off(labels, "node-a")
