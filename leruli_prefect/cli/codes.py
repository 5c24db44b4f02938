"""Codes: publishing a local image to the group's code bucket and listing what the group can run."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from leruli_prefect.cli.credentials import gateway_client, s3_client
from leruli_prefect.cli.failures import reports_errors
from leruli_prefect.errors import LeruliError
from leruli_prefect.settings import load_settings

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@reports_errors
def publish_code(
    code: Annotated[str, typer.Argument(help="The image name, e.g. psi4")],
    version: Annotated[str, typer.Argument(help="The image tag, e.g. 1.3.2")],
    docker_host: Annotated[str, typer.Option(help="Docker engine holding the image")] = DEFAULT_DOCKER_HOST,
) -> None:
    """Save the local image CODE:VERSION (compressed) to the group's code bucket, so its nodes can run it."""
    import docker

    from leruli_prefect.storage.buckets import ensure_bucket
    from leruli_prefect.storage.code_archive import (
        legacy_listing_key,
        local_image_id,
        object_key,
        save_image,
    )
    from leruli_prefect.storage.transfer import put_empty, upload_file

    settings = load_settings()
    reference = f"{code}:{version}"
    s3 = s3_client(settings)
    engine = docker.DockerClient(base_url=docker_host)
    with gateway_client(settings) as client:
        client.require_api_secret()
        if _already_published(client.codes(), reference, local_image_id(engine, reference)):
            return
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="leruli-code-") as scratch:
            archive = Path(scratch) / "image.tar.gz"
            saved = save_image(engine, reference, archive)
            saved_in = time.monotonic() - started
            bucket = client.code_bucket()
            ensure_bucket(s3, bucket)
            key = object_key(code, version, saved.archive_sha256)
            upload_file(s3, archive, bucket, key)
        record = {"name": code, "version": version, "object_key": key, "size": saved.size}
        client.publish_code(record | {"image_id": saved.image_id, "archive_sha256": saved.archive_sha256})
        put_empty(s3, bucket, legacy_listing_key(code, version))  # for the original client's list-codes
    typer.echo(
        f"Published {reference} ({saved.image_id[:19]}, {saved.size / 1e6:.1f} MB compressed; "
        f"saved in {saved_in:.1f} s, {time.monotonic() - started:.1f} s in all)"
    )


class CodeVersionTaken(LeruliError):
    """The group has this version already, as another image: a published version never changes."""


def _already_published(codes: list[dict[str, Any]], reference: str, image_id: str) -> bool:
    """True (and say so) when the group has this very image already under this name."""
    for code in codes:
        if code["image"] != reference:
            continue
        if code["image_id"] != image_id:
            raise CodeVersionTaken(
                f"{reference} is published already as {code['image_id'][:19]}, and your local image is "
                f"{image_id[:19]}; a published version never changes (nodes may hold it): use a new version"
            )
        typer.echo(f"{reference} is already published ({image_id[:19]}); nothing to do")
        return True
    return False


@reports_errors
def list_codes(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts)")] = False,
) -> None:
    """List the codes (CODE:VERSION) your group can run."""
    with gateway_client(load_settings()) as client:
        codes = client.codes()
    if as_json:
        typer.echo(json.dumps(codes, indent=2))
        return
    for code in codes:
        typer.echo(code["image"])


def register(app: typer.Typer) -> None:
    for name, alias, function in (
        ("task-publish-code", "publish-code", publish_code),
        ("task-list-codes", "list-codes", list_codes),
    ):
        app.command(name)(function)
        app.command(alias, help=f"Alias of {name}.")(function)
