"""Whether a node's run dirs share a filesystem with Docker's data root, which costs every job time.

Docker flushes that whole filesystem to disk whenever it makes a container or one ends: overlayfs syncs the
filesystem of its upper directory on unmount (moby/moby#47630; Docker 20.10 cannot turn it off). Run dirs on
it make a job's container creation wait for its inputs to reach the disk, and its end for its outputs: with
512 MiB just written, `docker create` took 1.0-1.3 s here instead of 0.03 s, and a container's end 1.2 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


def local_docker_root(docker_host: str, engine: docker.DockerClient) -> str | None:
    """Docker's data root (`docker info`'s Docker Root Dir) for an engine on this machine (a Unix socket);
    None for an engine elsewhere, whose data root is a path on its own machine."""
    if not docker_host.startswith("unix://"):
        return None
    return str(engine.info()["DockerRootDir"])


def shares_filesystem(data_dir: Path, docker_root_dir: str) -> bool | None:
    """True if `data_dir` (or, before it is made, its nearest existing parent) is on the filesystem holding
    `docker_root_dir`; None if that directory cannot be seen from here (another mount namespace)."""
    try:
        root_device = os.stat(docker_root_dir).st_dev
    except OSError:
        return None
    existing = data_dir.absolute()
    while not existing.exists():
        existing = existing.parent
    return existing.stat().st_dev == root_device


def shared_filesystem_warning(data_dir: Path, docker_root_dir: str) -> str:
    return (
        f"data dir {data_dir} is on the filesystem of Docker's data root {docker_root_dir}: Docker "
        "flushes it to disk whenever it makes a container or one ends, so each job waits for its inputs "
        "and outputs to be written (about 1 s per 512 MiB); put data_dir on another filesystem"
    )
