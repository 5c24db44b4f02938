"""`leruli doctor`: check a user's or a node's configuration and say what is wrong in plain words."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer

from leruli_prefect.cli.credentials import api_secret, s3_client
from leruli_prefect.client import GatewayClient
from leruli_prefect.errors import LeruliError
from leruli_prefect.gateway.security import SecretKind, secret_kind
from leruli_prefect.settings import load_settings
from leruli_prefect.storage.s3_client import make_s3_client

Verdict = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    text: str


def _check(findings: list[Finding], what: str, probe: Callable[[], str]) -> bool:
    try:
        findings.append(Finding("ok", f"{what}: {probe()}"))
        return True
    except LeruliError as exc:
        findings.append(Finding("problem", f"{what}: {exc}"))
    except Exception as exc:  # any failure of a probe is a finding, never a traceback
        findings.append(Finding("problem", f"{what}: {type(exc).__name__}: {exc}"))
    return False


def _check_s3(findings: list[Finding], make_client: Callable[[], object]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3 = make_client()
        # A bucket nobody made: valid keys get 404, wrong keys 403.
        s3.head_bucket(Bucket=f"leruli-doctor-{secrets.token_hex(8)}")  # type: ignore[attr-defined]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in ("404", "NoSuchBucket"):
            findings.append(Finding("problem", f"S3: the keys are not accepted ({code or exc})"))
            return
    except (BotoCoreError, LeruliError) as exc:
        findings.append(Finding("problem", f"S3: {exc}"))
        return
    findings.append(Finding("ok", "S3: reachable, keys accepted"))
    try:
        s3.list_buckets()  # type: ignore[attr-defined]
    except ClientError:
        findings.append(Finding("ok", "S3: these keys cannot list all buckets"))
    else:
        findings.append(
            Finding(
                "warning",
                "S3: these keys can list every bucket; job data is safe only while bucket names stay secret, "
                "so deny s3:ListAllMyBuckets for them",
            )
        )


def _user_findings() -> list[Finding]:
    settings = load_settings()
    findings: list[Finding] = []
    client = GatewayClient(settings.baseurl)
    if not _check(findings, f"gateway {settings.baseurl}", lambda: _reachable(client)):
        return findings
    secret = api_secret(settings)
    kind = secret_kind(secret) if secret else None
    if secret is None:
        findings.append(Finding("problem", "API secret: none set (LERULI_API_SECRET or `leruli login`)"))
    elif kind is not SecretKind.user:
        what = f"a {kind.value} secret" if kind else "not a leruli secret"
        findings.append(Finding("problem", f"API secret: this is {what}; API secrets start with lq_user_"))
    else:
        _check(
            findings,
            "API secret",
            lambda: _describe(GatewayClient(settings.baseurl, api_secret=secret).whoami(as_user=True)),
        )
    if settings.group_token is None:
        findings.append(
            Finding("warning", "group token: LERULI_GROUP_TOKEN is not set (needed to list jobs)")
        )
    else:
        token = settings.group_token.get_secret_value()
        _check(
            findings,
            "group token",
            lambda: _describe(GatewayClient(settings.baseurl, group_token=token).whoami()),
        )
    _check_s3(findings, lambda: s3_client(settings))
    return findings


def _node_findings(config_path: Path) -> list[Finding]:
    from leruli_prefect.worker.node_config import load_node_config

    findings: list[Finding] = []
    try:
        node = load_node_config(config_path)
    except LeruliError as exc:
        return [Finding("problem", f"node config: {exc}")]
    if config_path.stat().st_mode & 0o077:
        findings.append(
            Finding("warning", f"{config_path} holds secrets but others may read it: chmod 600 it")
        )
    client = GatewayClient(node.gateway_url)
    if _check(findings, f"gateway {node.gateway_url}", lambda: _reachable(client)):
        _check(
            findings,
            "compute secret and group token",
            lambda: _describe(
                client.node_identity(
                    group_token=node.group_token.get_secret_value(),
                    compute_secret=node.compute_secret.get_secret_value(),
                )
            ),
        )
    _check_s3(
        findings, lambda: make_s3_client(node.s3_server, node.s3_access, node.s3_secret.get_secret_value())
    )
    if _check(findings, f"Docker {node.docker_host}", lambda: _docker_version(node.docker_host)):
        _check_data_dir_filesystem(findings, node.docker_host, node.data_dir)
    return findings


def _check_data_dir_filesystem(findings: list[Finding], docker_host: str, data_dir: Path) -> None:
    """Warn when the run dirs share Docker's filesystem (worker/docker_filesystem.py)."""
    from leruli_prefect.worker import docker_engine, docker_filesystem

    engine = docker_engine.connect(docker_host, timeout=10)
    root = docker_filesystem.local_docker_root(docker_host, engine)
    shared = docker_filesystem.shares_filesystem(data_dir, root) if root else None
    if shared:
        findings.append(Finding("warning", docker_filesystem.shared_filesystem_warning(data_dir, root)))
    elif shared is False:
        findings.append(Finding("ok", f"data dir {data_dir}: not on the filesystem of Docker's data root"))


def _reachable(client: GatewayClient) -> str:
    client.health()
    return "reachable"


def _describe(identity: dict[str, object]) -> str:
    who = f"user {identity['user']}" if identity.get("user") else str(identity["kind"])
    role = " (admin)" if identity.get("is_admin") else ""
    return f"valid: {who}{role} of group {identity['group']}"


def _docker_version(docker_host: str) -> str:
    from leruli_prefect.worker import docker_engine

    engine = docker_engine.connect(docker_host, timeout=10)
    return f"reachable (engine {engine.version()['Version']})"


def doctor(
    node: Annotated[
        Path | None, typer.Option("--node", help="Check this node.toml instead of your settings")
    ] = None,
) -> None:
    """Check your settings (or a node's node.toml): gateway, secrets, S3, Docker."""
    findings = _node_findings(node) if node is not None else _user_findings()
    for finding in findings:
        typer.echo(f"{finding.verdict:<8} {finding.text}")
    problems = sum(finding.verdict == "problem" for finding in findings)
    if problems:
        typer.echo(f"{problems} problem(s) found.", err=True)
        raise typer.Exit(code=1)
