"""Telling whether run dirs share Docker's filesystem (unit checks on paths; the real engine's data root is
covered in tests/cli/test_doctor.py)."""

from __future__ import annotations

from pathlib import Path

from leruli_prefect.worker.docker_filesystem import local_docker_root, shares_filesystem


def test_a_data_dir_not_made_yet_is_judged_by_its_parent(tmp_path: Path) -> None:
    assert shares_filesystem(tmp_path / "node-data" / "runs", str(tmp_path)) is True


def test_another_filesystem_is_not_shared(tmp_path: Path) -> None:
    assert shares_filesystem(tmp_path, "/proc") is False  # procfs: never the disk of a directory


def test_a_data_root_invisible_here_is_unknown(tmp_path: Path) -> None:
    assert shares_filesystem(tmp_path, str(tmp_path / "no-such-root")) is None


def test_a_remote_engine_is_not_asked() -> None:
    class Unreachable:
        def info(self) -> dict[str, str]:
            raise AssertionError("a remote engine's data root is on its own machine")

    assert local_docker_root("tcp://10.0.0.9:2376", Unreachable()) is None  # type: ignore[arg-type]
