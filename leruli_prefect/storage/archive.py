"""The job archive `run.tgz`: the submitted directory plus `run.sh`, packed by the client, unpacked on a node.

Unpacking is where a hostile submission would strike, so it refuses anything that is not a plain file or
directory inside the run directory (Python's `data` tar filter) and caps the unpacked size.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from leruli_prefect.errors import SubmissionError, UnsafeArchiveError

RUN_SCRIPT = "run.sh"
STDOUT_FILE = "joblog.txt"
STDERR_FILE = "joberr.txt"
# Names the job contract gives a meaning: inputs may not use them.
RESERVED_NAMES = frozenset({RUN_SCRIPT, STDOUT_FILE, STDERR_FILE})
# Files the client writes into a submitted directory; they describe the submission, they are not inputs.
CLIENT_FILES = frozenset({"leruli.job", "leruli.bucket", "leruli.pending"})
DEFAULT_MAX_UNPACKED_BYTES = 20 * 1024**3


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


def pack_directory(directory: Path, command: str, archive: Path) -> int:
    """Write `archive` (gzip tar) with the inputs below `directory` and a `run.sh` running `command`.

    Returns the number of input files packed.
    """
    check_inputs(directory)
    count = 0
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for path in sorted(directory.iterdir()):
            if path.name in CLIENT_FILES or path.resolve() == archive.resolve():
                continue
            tar.add(path, arcname=path.name, recursive=True)
            count += 1
        script = run_script(command).encode()
        info = tarfile.TarInfo(RUN_SCRIPT)
        info.size = len(script)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(script))
    return count


def safe_extract(archive: Path, destination: Path, max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> None:
    """Unpack `archive` into `destination`, refusing entries that escape it, links out, devices, or bulk.

    Raises `UnsafeArchiveError` with the offending entry named; nothing is written outside `destination`.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            total = sum(member.size for member in members if member.isfile())
            if total > max_bytes:
                raise UnsafeArchiveError(
                    f"run.tgz unpacks to {total} bytes, more than this node's limit of {max_bytes}"
                )
            for member in members:
                _check_member(member)
            tar.extractall(destination, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"run.tgz is unsafe: {exc}") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise UnsafeArchiveError(f"run.tgz cannot be unpacked: {exc}") from exc


def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse outright what the `data` filter would silently rewrite (a leading `/` is stripped there)."""
    if member.name.startswith("/") or (member.issym() and member.linkname.startswith("/")):
        raise UnsafeArchiveError(f"run.tgz entry {member.name!r} has an absolute path")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"run.tgz entry {member.name!r} is a device or special file")
