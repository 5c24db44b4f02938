"""A code archive (`docker save` of one image) is checked against its record before `docker load`."""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from leruli_prefect.storage.code_archive import (
    CodeArchiveError,
    SavedImage,
    check_archive,
    file_sha256,
    load_image,
    save_image,
)
from tests.stack import TEST_IMAGE


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    yield client
    client.close()


@pytest.fixture
def code(engine: docker.DockerClient) -> Iterator[str]:
    """A tag of its own on a copy of the test image; removed afterwards."""
    reference = f"archive-test-{secrets.token_hex(3)}:1.0"
    container = engine.containers.create(TEST_IMAGE, command="true")
    image = container.commit(*reference.split(":"), changes=[f"ENV MARK={secrets.token_hex(4)}"])
    container.remove()
    yield reference
    try:
        engine.images.remove(image.id, force=True)
    except docker.errors.NotFound:
        pass


def _rewrite(archive: Path, edit: dict[str, bytes]) -> None:
    """Write `archive` again (gzipped) with some members' contents replaced."""
    with tarfile.open(archive, "r:gz") as source:
        members = [(m, source.extractfile(m).read() if m.isfile() else None) for m in source.getmembers()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as target:
        for member, data in members:
            data = edit.get(member.name, data)
            if data is not None:
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    archive.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1))


def _checks(archive: Path, reference: str, saved: SavedImage) -> None:
    check_archive(archive, reference=reference, image_id=saved.image_id, archive_sha256=saved.archive_sha256)


def test_save_check_and_load_round_trip(engine: docker.DockerClient, code: str, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar.gz"
    saved = save_image(engine, code, archive)
    assert saved.image_id == engine.images.get(code).id and saved.size == archive.stat().st_size
    _checks(archive, code, saved)
    engine.images.remove(code)
    load_image(engine, archive, reference=code, image_id=saved.image_id)
    assert engine.images.get(code).id == saved.image_id


def test_a_changed_byte_is_refused(engine: docker.DockerClient, code: str, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar.gz"
    saved = save_image(engine, code, archive)
    archive.write_bytes(archive.read_bytes()[:-1] + b"\x01")
    with pytest.raises(CodeArchiveError, match="digest mismatch"):
        _checks(archive, code, saved)


def test_an_archive_tagging_another_image_is_refused(
    engine: docker.DockerClient, code: str, tmp_path: Path
) -> None:
    """A publisher (whose record digests match) cannot make a node retag another image, e.g. psi4:1.3.2."""
    archive = tmp_path / "image.tar.gz"
    save_image(engine, code, archive)
    with tarfile.open(archive, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    manifest[0]["RepoTags"] = [code, "psi4:1.3.2"]
    _rewrite(archive, {"manifest.json": json.dumps(manifest).encode()})
    forged = SavedImage(engine.images.get(code).id, file_sha256(archive), archive.stat().st_size)
    with pytest.raises(CodeArchiveError, match="tagged"):
        _checks(archive, code, forged)


def test_a_config_that_is_not_the_published_image_is_refused(
    engine: docker.DockerClient, code: str, tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar.gz"
    saved = save_image(engine, code, archive)
    forged = SavedImage("sha256:" + "0" * 64, file_sha256(archive), saved.size)
    with pytest.raises(CodeArchiveError, match="image config"):
        _checks(archive, code, forged)


def test_a_loaded_image_that_is_not_the_published_one_is_untagged(
    engine: docker.DockerClient, code: str, tmp_path: Path
) -> None:
    """The last check, after `docker load`: the name stays only on the published image."""
    archive = tmp_path / "image.tar.gz"
    save_image(engine, code, archive)
    engine.images.remove(code)
    with pytest.raises(CodeArchiveError, match="digest mismatch"):
        load_image(engine, archive, reference=code, image_id="sha256:" + "0" * 64)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(code)
