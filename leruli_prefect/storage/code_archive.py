"""A code's archive: `docker save` of one image, gzipped, as it lies in the group's code bucket.

Blocking (docker-py, gzip, hashing); async callers run these functions in a thread.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leruli_prefect.errors import LeruliError

if TYPE_CHECKING:
    import docker

# gzip -1: measured here, half the time of the default level for 12 % more bytes. An archive is saved once
# by a waiting researcher and fetched once per node over a fast link; decompression costs the same.
COMPRESS_LEVEL = 1
_CHUNK = 1024 * 1024
_MAX_JSON_BYTES = 4 * 1024 * 1024  # manifest.json and the image config: small; a bigger one is hostile


class CodeArchiveError(LeruliError):
    """A code archive does not hold what its record says (digest, tag) or cannot be read."""


@dataclass(frozen=True)
class SavedImage:
    image_id: str  # sha256:..., the image's config digest (`docker image inspect`'s Id)
    archive_sha256: str
    size: int


def object_key(name: str, version: str, archive_sha256: str) -> str:
    """Content-addressed, so that a second upload never overwrites the archive a record points at."""
    return f"codes/{name}/{version}/{archive_sha256}.tar.gz"


def legacy_listing_key(name: str, version: str) -> str:
    """The empty entry the original Leruli client lists a code by: `NAME-VERSION.tgz` at the bucket's top.

    That client's `task-list-codes` only lists the code bucket (it reads no archive); our archives are
    content-addressed under `codes/`, so each published code also gets this entry to be listed by.
    """
    return f"{name}-{version}.tgz"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def local_image_id(engine: docker.DockerClient, reference: str) -> str:
    import docker.errors

    try:
        return engine.images.get(reference).id
    except docker.errors.ImageNotFound as exc:
        raise CodeArchiveError(f"no local image {reference} (see `docker images`)") from exc


def save_image(engine: docker.DockerClient, reference: str, archive: Path) -> SavedImage:
    """Write `docker save reference | gzip` to `archive`, tagged `reference` only."""
    image_id = local_image_id(engine, reference)
    image = engine.images.get(image_id)
    with gzip.open(archive, "wb", compresslevel=COMPRESS_LEVEL) as packed:
        for chunk in image.save(chunk_size=_CHUNK, named=reference):
            packed.write(chunk)
    return SavedImage(image_id=image_id, archive_sha256=file_sha256(archive), size=archive.stat().st_size)


def check_archive(archive: Path, *, reference: str, image_id: str, archive_sha256: str) -> None:
    """Refuse an archive that is not byte for byte the published one, or that would tag anything else.

    Checked before `docker load`, so a tampered archive never reaches the engine (which other groups' jobs
    may share): one image, tagged exactly `reference`, whose config digest is `image_id`.
    """
    actual = file_sha256(archive)
    if actual != archive_sha256:
        raise CodeArchiveError(
            f"digest mismatch for {reference}: the archive in the code bucket is sha256:{actual[:12]}, "
            f"published as sha256:{archive_sha256[:12]}; not loaded"
        )
    files = _json_members(archive)
    try:
        manifest = json.loads(files["manifest.json"])
        [entry] = manifest
        tags, config = entry.get("RepoTags"), entry["Config"]
    except (KeyError, ValueError, TypeError) as exc:
        raise CodeArchiveError(f"the archive of {reference} is not one `docker save` image") from exc
    if tags != [reference]:
        raise CodeArchiveError(f"the archive of {reference} is tagged {tags}; not loaded")
    if config not in files or "sha256:" + hashlib.sha256(files[config]).hexdigest() != image_id:
        raise CodeArchiveError(f"digest mismatch for {reference}: its image config is not {image_id[:19]}")


def _json_members(archive: Path) -> dict[str, bytes]:
    """The small JSON files at the top of a `docker save` tar (manifest, image config), in one pass."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                if member.isfile() and "/" not in member.name and member.name.endswith(".json"):
                    if member.size > _MAX_JSON_BYTES:
                        raise CodeArchiveError(f"{member.name} in the code archive is too big")
                    handle = tar.extractfile(member)
                    found[member.name] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CodeArchiveError(f"the code archive cannot be read: {exc}") from exc
    return found


def load_image(engine: docker.DockerClient, archive: Path, *, reference: str, image_id: str) -> None:
    """`docker load` the archive and check that `reference` is now `image_id`; untag it if not."""
    import docker.errors

    with open(archive, "rb") as handle:  # sent as it is: the engine decompresses, as `docker load -i` does
        engine.images.load(handle)
    loaded = engine.images.get(reference)
    if loaded.id != image_id:
        try:
            engine.images.remove(reference)  # by tag: another image with the same id keeps its own tags
        except docker.errors.APIError:
            pass
        raise CodeArchiveError(
            f"digest mismatch for {reference}: loaded {loaded.id[:19]}, not {image_id[:19]}"
        )
