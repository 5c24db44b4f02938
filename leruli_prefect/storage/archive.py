"""The job archive `run.tgz`: the submitted directory plus `run.sh`, packed by the client, unpacked on a node.

Unpacking is where a hostile submission would strike, so it refuses anything that is not a plain file or
directory inside the run directory (Python's `data` tar filter) and caps the unpacked size.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from leruli_prefect.errors import SubmissionError, UnsafeArchiveError

RUN_SCRIPT = "run.sh"
STDOUT_FILE = "joblog.txt"
STDERR_FILE = "joberr.txt"
# Names the job contract gives a meaning: inputs may not use them.
RESERVED_NAMES = frozenset({RUN_SCRIPT, STDOUT_FILE, STDERR_FILE})
# The node's list of the inputs a job left unchanged (not uploaded again; see storage/job_files.py).
INPUTS_MANIFEST = "leruli.inputs"
# Files the client writes into a submitted directory; they describe the submission, they are not inputs.
CLIENT_FILES = frozenset({"leruli.job", "leruli.bucket", "leruli.pending", INPUTS_MANIFEST})
DEFAULT_MAX_UNPACKED_BYTES = 20 * 1024**3
# Compression costs far more than it saves on a fast network: level 1 is several times faster than the
# default 6 at a similar ratio, and data that does not shrink (already compressed, binary, random) is only
# stored (level 0, still a valid gzip stream any reader opens). A sample of the largest inputs decides.
FAST_LEVEL = 1
STORED_LEVEL = 0
_SAMPLE_BYTES = 256 * 1024
_SAMPLED_FILES = 4
_SMALL_INPUTS = 1024 * 1024  # below this, the choice does not matter: compress
_INCOMPRESSIBLE = 0.9  # compressed/raw of the sample above which compression is skipped


def run_script(command: str) -> str:
    return f"#!/bin/bash\n{command}\n"


def check_inputs(directory: Path) -> None:
    """Refuse a directory whose inputs use a reserved name."""
    clashes = sorted(name for name in RESERVED_NAMES if (directory / name).exists())
    if clashes:
        raise SubmissionError(
            f"{directory} contains {', '.join(clashes)}: these names are reserved for the job "
            "(run.sh holds the command, joblog.txt/joberr.txt receive its output); rename them"
        )


def pack_directory(directory: Path, command: str, archive: Path | IO[bytes]) -> int:
    """Write `archive` (gzip tar; a path, or a file open for writing) with the inputs below `directory` and
    a `run.sh` running `command`.

    Returns the number of input files packed.
    """
    check_inputs(directory)
    inside = archive.resolve() if isinstance(archive, Path) else None  # never pack the archive into itself
    inputs = [path for path in _top_inputs(directory) if path.resolve() != inside]
    with tarfile.open(mode="w:gz", compresslevel=compression_level(inputs), **_tar_file(archive)) as tar:
        for path in inputs:
            tar.add(path, arcname=path.name, recursive=True)
        script = run_script(command).encode()
        info = tarfile.TarInfo(RUN_SCRIPT)
        info.size = len(script)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(script))
    return len(inputs)


def archive_size_bound(directory: Path) -> int:
    """An upper estimate of what `pack_directory` writes for `directory` (the files, tar's headers and
    padding, gzip's stored blocks), from the file sizes alone: it sets the part size of the upload."""
    files = _regular_files(_top_inputs(directory))
    content = sum(size for _, size in files)
    return content + content // 100 + 2048 * (len(files) + 2) + 1024 * 1024


def _top_inputs(directory: Path) -> list[Path]:
    return [path for path in sorted(directory.iterdir()) if path.name not in CLIENT_FILES]


def _tar_file(archive: Path | IO[bytes]) -> dict[str, Any]:
    """`tarfile.open`'s argument for a path or for a file object."""
    return {"name": archive} if isinstance(archive, Path) else {"fileobj": archive}


def compression_level(inputs: list[Path]) -> int:
    """The gzip level for packing `inputs`: 0 (stored) when a sample of the largest files does not shrink.

    >>> compression_level([])
    1
    """
    files = sorted(_regular_files(inputs), key=lambda item: item[1], reverse=True)
    if sum(size for _, size in files) < _SMALL_INPUTS:
        return FAST_LEVEL
    raw = packed = 0
    for path, _ in files[:_SAMPLED_FILES]:
        try:
            with open(path, "rb") as handle:
                sample = handle.read(_SAMPLE_BYTES)
        except OSError:
            continue  # tar will report it
        raw += len(sample)
        packed += len(zlib.compress(sample, FAST_LEVEL))
    return STORED_LEVEL if raw and packed > _INCOMPRESSIBLE * raw else FAST_LEVEL


def _regular_files(inputs: list[Path]) -> list[tuple[Path, int]]:
    files = []
    for top in inputs:
        paths = [top] if not top.is_dir() or top.is_symlink() else [top, *top.rglob("*")]
        for path in paths:
            try:
                info = path.lstat()
            except OSError:
                continue
            if path.is_file() and not path.is_symlink():
                files.append((path, info.st_size))
    return files


def safe_extract(
    archive: Path | IO[bytes], destination: Path, max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
) -> None:
    """Unpack `archive` (a path, or a stream read once) into `destination`, refusing entries that escape it,
    links out, devices, or bulk.

    Raises `UnsafeArchiveError` with the offending entry named; nothing is written outside `destination`,
    and what was unpacked before a refusal is removed again. One pass over the stream: reading the member
    list first would decompress the whole archive twice.
    """
    before = set(destination.iterdir())
    try:
        with tarfile.open(mode="r|gz", **_tar_file(archive)) as tar:
            tar.extractall(destination, members=_checked(tar, max_bytes), filter="data")
    except tarfile.FilterError as exc:
        _remove_new(destination, before)
        raise UnsafeArchiveError(f"run.tgz is unsafe: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        _remove_new(destination, before)
        raise UnsafeArchiveError(f"run.tgz cannot be unpacked: {exc}") from exc
    except BaseException:
        _remove_new(destination, before)
        raise


def _checked(tar: tarfile.TarFile, max_bytes: int) -> Iterator[tarfile.TarInfo]:
    """The members in stream order, each checked before it is unpacked, with a running total of sizes."""
    total = 0
    for member in tar:
        _check_member(member)
        if member.isfile():
            total += member.size
            if total > max_bytes:
                raise UnsafeArchiveError(
                    f"run.tgz unpacks to more than this node's limit of {max_bytes} bytes"
                )
        yield member


def _remove_new(destination: Path, before: set[Path]) -> None:
    for path in set(destination.iterdir()) - before:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse outright what the `data` filter would silently rewrite (a leading `/` is stripped there)."""
    if member.name.startswith("/") or (member.issym() and member.linkname.startswith("/")):
        raise UnsafeArchiveError(f"run.tgz entry {member.name!r} has an absolute path")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"run.tgz entry {member.name!r} is a device or special file")
