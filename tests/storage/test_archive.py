"""The job archive: what the client packs, and what a node refuses to unpack."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from leruli_prefect.errors import SubmissionError, UnsafeArchiveError
from leruli_prefect.storage.archive import compression_level, pack_directory, safe_extract


def _archive(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_pack_adds_run_script_and_leaves_out_client_files(tmp_path: Path) -> None:
    source = tmp_path / "job"
    (source / "sub").mkdir(parents=True)
    (source / "input.dat").write_text("molecule")
    (source / "sub" / "basis.txt").write_text("sto-3g")
    (source / "leruli.job").write_text("old")
    archive = tmp_path / "run.tgz"

    count = pack_directory(source, "psi4 input.dat", archive)

    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        script = tar.extractfile("run.sh").read().decode()  # type: ignore[union-attr]
        mode = tar.getmember("run.sh").mode
    assert count == 2
    assert {"input.dat", "sub", "sub/basis.txt", "run.sh"} == names
    assert script == "#!/bin/bash\npsi4 input.dat\n"
    assert mode & 0o111


@pytest.mark.parametrize("reserved", ["run.sh", "joblog.txt", "joberr.txt"])
def test_pack_refuses_reserved_names(tmp_path: Path, reserved: str) -> None:
    (tmp_path / reserved).write_text("mine")
    with pytest.raises(SubmissionError, match=reserved):
        pack_directory(tmp_path, "true", tmp_path.parent / f"{reserved}.tgz")


def test_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "job"
    source.mkdir()
    (source / "a.txt").write_text("A")
    pack_directory(source, "cat a.txt", tmp_path / "run.tgz")
    target = tmp_path / "out"
    target.mkdir()
    safe_extract(tmp_path / "run.tgz", target)
    assert (target / "a.txt").read_text() == "A"
    assert (target / "run.sh").exists()


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("/etc/evil"), "absolute|outside"),
        (_file("../evil"), "outside"),
        (_file("sub/../../evil"), "outside"),
        (_link("escape", "/etc/passwd"), "absolute|outside"),
        (_link("escape", "../../etc/passwd"), "outside"),
        (_link("hard", "/etc/passwd", tarfile.LNKTYPE), "absolute|outside|not found|link"),
        (_link("dev", "", tarfile.CHRTYPE), "special|device"),
        (_link("fifo", "", tarfile.FIFOTYPE), "special|device"),
    ],
)
def test_safe_extract_refuses_hostile_entries(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], reason: str
) -> None:
    archive = _archive(tmp_path / "run.tgz", _file("ok.txt"), member)
    target = tmp_path / "run" / "dir"
    target.mkdir(parents=True)

    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, target)

    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(target)}
    assert outside == {tmp_path / "run.tgz", tmp_path / "run"}


def test_safe_extract_refuses_more_than_the_size_limit(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "run.tgz", _file("big.bin", b"0" * 5000))
    target = tmp_path / "run"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match="limit"):
        safe_extract(archive, target, max_bytes=4096)
    assert list(target.iterdir()) == []


def test_safe_extract_refuses_garbage(tmp_path: Path) -> None:
    (tmp_path / "run.tgz").write_bytes(b"not a tar file")
    with pytest.raises(UnsafeArchiveError, match="cannot be unpacked"):
        safe_extract(tmp_path / "run.tgz", tmp_path)


def _gzip_stored(archive: Path) -> bool:
    """Whether the gzip stream holds its data uncompressed (level 0): as big as the tar inside."""
    with tarfile.open(archive) as tar:
        unpacked = sum(member.size for member in tar.getmembers())
    return archive.stat().st_size > unpacked


def test_incompressible_inputs_are_stored_and_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "job"
    source.mkdir()
    data = os.urandom(3 * 1024 * 1024)
    (source / "random.bin").write_bytes(data)
    (source / "note.txt").write_text("small and compressible " * 10)
    archive = tmp_path / "run.tgz"

    assert compression_level(sorted(source.iterdir())) == 0
    pack_directory(source, "true", archive)

    assert _gzip_stored(archive)
    target = tmp_path / "out"
    target.mkdir()
    safe_extract(archive, target)
    assert (target / "random.bin").read_bytes() == data
    assert (target / "note.txt").read_text() == "small and compressible " * 10


def test_compressible_inputs_are_compressed(tmp_path: Path) -> None:
    source = tmp_path / "job"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "coords.xyz").write_text("C 0.000 0.000 0.000\n" * 200_000)  # 4 MB of text
    archive = tmp_path / "run.tgz"

    assert compression_level(sorted(source.iterdir())) == 1
    pack_directory(source, "true", archive)

    assert archive.stat().st_size < 400_000
