"""The original client's routes (/v22_1, /latest/group-token): their answers to bad secrets, other groups'
jobs and unpublished codes, against the real server (no node serves these groups: their jobs stay queued)."""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest

from leruli_prefect.gateway.routes.legacy_v22_1 import LEGACY_COMMAND
from tests import stack


@pytest.fixture(scope="module")
def groups(server: stack.Server) -> tuple[dict[str, str], dict[str, str]]:
    """Two groups of their own; the first has published a code (so its codes are checked)."""
    mine, other = (server.init_group(f"legacy-{name}-{secrets.token_hex(3)}") for name in ("a", "b"))
    record = {
        "name": "leruli-busybox",
        "version": "1.0",
        "image_id": "sha256:" + "a" * 64,
        "archive_sha256": "b" * 64,
        "object_key": "codes/leruli-busybox/1.0/" + "b" * 64 + ".tar.gz",
        "size": 1,
    }
    answer = _v1(server, mine, "POST", "/v1/codes", record)
    assert answer.status_code == 201, answer.text
    return mine, other


def _v1(
    server: stack.Server, group: dict[str, str], method: str, path: str, body: object = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {group['api_secret']}"}
    return httpx.request(method, f"{server.url}{path}", headers=headers, json=body, timeout=30)


def _post(server: stack.Server, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30)


def _job(secret: str, code: str = "leruli-busybox:1.0", **changes: object) -> dict[str, object]:
    """A job as the original client sends it."""
    body = {
        "secret": secret,
        "bucketid": str(uuid.uuid4()),
        "name": "default",
        "codeversion": code,
        "cores": 2,
        "memorymb": 1000,
        "timelimit": 600,
    }
    return body | changes


def test_submitted_job_is_a_v1_job_and_reads_back_in_the_old_words(
    server: stack.Server, groups: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, _ = groups
    job = _job(mine["api_secret"])
    answer = _post(server, "/v22_1/task-submit", job)
    assert answer.status_code == 200, answer.text
    job_id = answer.json()
    view = _v1(server, mine, "GET", f"/v1/jobs/{job_id}").json()
    assert (view["owner"], view["image"], view["bucket"]) == ("admin", "leruli-busybox:1.0", job["bucketid"])
    assert (view["cores"], view["memory_mb"], view["time_limit_s"], view["command"]) == (
        2,
        1000,
        600,
        LEGACY_COMMAND,
    )
    # The same bucket again (a retried request) answers the same job.
    assert _post(server, "/v22_1/task-submit", job).json() == job_id

    ref = {"secret": mine["api_secret"], "jobid": job_id}
    assert _post(server, "/v22_1/task-status", ref).json() == {"status": "pending", "reason": None}
    cancelled = _post(server, "/v22_1/task-cancel", ref).json()
    assert cancelled == {"status": "cancelled", "reason": "cancelled by admin"}
    again = _post(server, "/v22_1/task-cancel", ref)
    assert again.status_code == 200
    assert again.json() == {"status": "cancelled", "reason": "had already ended: cancelled by admin"}


def test_bad_secrets_are_refused_with_403(
    server: stack.Server, groups: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, _ = groups
    job_id = _post(server, "/v22_1/task-submit", _job(mine["api_secret"])).json()
    added = _v1(server, mine, "POST", "/v1/users", {"name": "leaver"}).json()
    assert _v1(server, mine, "POST", "/v1/users/leaver/disable").status_code == 200
    bad = {
        "garbage": "not-a-secret",
        "empty": "",
        "group token": mine["group_token"],
        "compute secret": mine["compute_secret"],
        "disabled user": added["api_secret"],
        "operator": server.operator_secret,
    }
    for what, secret in bad.items():
        for path, body in (
            ("/v22_1/task-submit", _job(secret)),
            ("/v22_1/task-status", {"secret": secret, "jobid": job_id}),
            ("/v22_1/task-cancel", {"secret": secret, "jobid": job_id}),
            ("/latest/group-token", {"secret": secret}),
        ):
            answer = _post(server, path, body)
            assert answer.status_code == 403, (what, path, answer.text)
            assert answer.json()["detail"]
        [entry] = _post(server, "/v22_1/bulk/task-submit", [_job(secret)]).json()
        assert entry["status"] == 403, (what, entry)
    assert (
        _post(server, "/v22_1/task-status", {"secret": mine["api_secret"], "jobid": job_id}).json()["status"]
        == "pending"
    )  # none of them cancelled it


def test_other_groups_jobs_do_not_exist(
    server: stack.Server, groups: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, other = groups
    theirs = _post(server, "/v22_1/task-submit", _job(other["api_secret"])).json()
    for path in ("/v22_1/task-status", "/v22_1/task-cancel"):
        for jobid in (theirs, str(uuid.uuid4()), "not-a-job-id"):
            answer = _post(server, path, {"secret": mine["api_secret"], "jobid": jobid})
            assert answer.status_code == 404, (path, jobid, answer.text)
    still = _post(server, "/v22_1/task-status", {"secret": other["api_secret"], "jobid": theirs})
    assert still.json() == {"status": "pending", "reason": None}


def test_unpublished_code_is_refused_with_the_similar_ones(
    server: stack.Server, groups: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, _ = groups
    single = _post(server, "/v22_1/task-submit", _job(mine["api_secret"], code="leruli-busybox:1.1"))
    assert single.status_code == 409 and "similar: leruli-busybox:1.0" in single.json()["detail"], single.text

    good, unpublished, malformed = (
        _job(mine["api_secret"]),
        _job(mine["api_secret"], code="leruli-busybox:1.1"),
        _job(mine["api_secret"], bucketid="leruli-not-a-uuid"),
    )
    results = _post(server, "/v22_1/bulk/task-submit", [good, unpublished, malformed]).json()
    assert [result["status"] for result in results] == [200, 422, 422], results
    assert "similar: leruli-busybox:1.0" in results[1]["detail"]
    view = _v1(server, mine, "GET", f"/v1/jobs/{results[0]['data']}").json()
    assert view["bucket"] == good["bucketid"]

    too_many = _post(server, "/v22_1/bulk/task-submit", [good] * 51)
    assert too_many.status_code == 422


def test_group_token_names_the_code_bucket(
    server: stack.Server, groups: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, _ = groups
    suffix = _post(server, "/latest/group-token", {"secret": mine["api_secret"]}).json()
    assert f"code-{suffix}" == _v1(server, mine, "GET", "/v1/codes/bucket").json()["bucket"]
    assert suffix != mine["group_token"]
