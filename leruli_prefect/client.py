"""A typed HTTP client for the gateway's /v1 REST API, used by the CLI and the Python API."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import httpx

from leruli_prefect.errors import AuthenticationError, ConfigurationError, GatewayError
from leruli_prefect.job_spec import JobSpec, JobView

BUSY_RETRIES = 6
# How a node proves it belongs to a group (Prefect's client sends them as custom headers too).
GROUP_TOKEN_HEADER = "X-Leruli-Group-Token"
COMPUTE_SECRET_HEADER = "X-Leruli-Compute-Secret"


class GatewayClient:
    """Talks to one gateway with the credentials it is given.

    >>> client = GatewayClient("http://127.0.0.1:4300", api_secret="lq_user_...")
    >>> job = client.submit_job(JobSpec(image="xtb:6.5.1", command="xtb mol.xyz", bucket="leruli-..."))
    """

    def __init__(
        self,
        baseurl: str,
        *,
        api_secret: str | None = None,
        group_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.baseurl = baseurl.rstrip("/")
        self.api_secret = api_secret
        self.group_token = group_token
        self._http = httpx.Client(base_url=self.baseurl, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit_job(self, spec: JobSpec) -> JobView:
        return JobView.model_validate(
            self._call("POST", "/v1/jobs", self.require_api_secret(), json=spec.model_dump())
        )

    def submit_jobs(self, jobs: list[tuple[JobSpec, str]]) -> list[dict[str, Any]]:
        """Create many jobs in one request; each with an idempotency key, so that resending is safe.

        Returns `{"id", "name", "existed"}` per job, in order.
        """
        body = {"jobs": [{**spec.model_dump(), "idempotency_key": key} for spec, key in jobs]}
        return self._call("POST", "/v1/jobs/batch", self.require_api_secret(), json=body)["jobs"]

    def lookup_jobs(self, job_ids: list[str]) -> list[JobView]:
        """The jobs among `job_ids` that exist in the group (at most 200 per call)."""
        body = self._call("POST", "/v1/jobs/lookup", self._reader(), json={"ids": job_ids})
        return [JobView.model_validate(job) for job in body["jobs"]]

    def job(self, job_id: UUID | str) -> JobView:
        return JobView.model_validate(self._call("GET", f"/v1/jobs/{job_id}", self._reader()))

    def jobs(self, limit: int = 100) -> list[JobView]:
        body = self._call("GET", "/v1/jobs", self._reader(), params={"limit": limit})
        return [JobView.model_validate(job) for job in body["jobs"]]

    def cancel_job(self, job_id: UUID | str) -> JobView:
        return JobView.model_validate(
            self._call("POST", f"/v1/jobs/{job_id}/cancel", self.require_api_secret())
        )

    def prune_job(self, job_id: UUID | str) -> str:
        """Ask leave to delete a job's data; returns the bucket to delete."""
        return self._call("POST", f"/v1/jobs/{job_id}/prune", self.require_api_secret())["bucket"]

    def users(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/users", self._reader())["users"]

    def add_user(self, name: str, *, admin: bool = False) -> dict[str, Any]:
        return self._call("POST", "/v1/users", self.require_api_secret(), json={"name": name, "admin": admin})

    def disable_user(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/users/{name}/disable", self.require_api_secret())

    def set_role(self, name: str, *, admin: bool) -> dict[str, Any]:
        return self._call("PATCH", f"/v1/users/{name}", self.require_api_secret(), json={"is_admin": admin})

    def rotate_own_secret(self) -> dict[str, Any]:
        """A new API secret for this client's user (`{"name", "api_secret"}`); the current one dies now."""
        return self._call("POST", "/v1/users/me/secret", self.require_api_secret())

    def rotate_compute_secret(self) -> str:
        return self._call("POST", "/v1/compute-secret", self.require_api_secret())["compute_secret"]

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/audit", self._reader(), params={"limit": limit})["entries"]

    def health(self) -> None:
        self._call("GET", "/v1/health", None)

    def whoami(self, *, as_user: bool = False) -> dict[str, Any]:
        return self._call("GET", "/v1/whoami", self.require_api_secret() if as_user else self._reader())

    def node_identity(self, *, group_token: str, compute_secret: str) -> dict[str, Any]:
        """Who a node is (its group and work pool), proven by the group token and the compute secret."""
        headers = {COMPUTE_SECRET_HEADER: compute_secret, GROUP_TOKEN_HEADER: group_token}
        return self._call("GET", "/v1/whoami", None, headers=headers)

    def codes(self) -> list[dict[str, Any]]:
        """The group's published codes, each with its bucket, object key and digests."""
        return self._call("GET", "/v1/codes", self._reader())["codes"]

    def node_codes(self, *, group_token: str, compute_secret: str) -> list[dict[str, Any]]:
        """The group's published codes as a node sees them (to fetch an image it lacks)."""
        headers = {COMPUTE_SECRET_HEADER: compute_secret, GROUP_TOKEN_HEADER: group_token}
        return self._call("GET", "/v1/codes", None, headers=headers)["codes"]

    def node_result_storage(self, *, group_token: str, compute_secret: str) -> dict[str, Any]:
        """Where a node writes result records: `{"bucket", "block_document_id", "block_document_name"}`."""
        headers = {COMPUTE_SECRET_HEADER: compute_secret, GROUP_TOKEN_HEADER: group_token}
        return self._call("GET", "/v1/results/storage", None, headers=headers)

    def node_runs(self, ids: list[UUID], *, group_token: str, compute_secret: str) -> list[dict[str, Any]]:
        """What a node watches of the runs `ids` (its group's only): `{"id", "state_type", "state_message",
        "labels", "tags"}` each; a run not found is left out."""
        headers = {COMPUTE_SECRET_HEADER: compute_secret, GROUP_TOKEN_HEADER: group_token}
        body = {"ids": [str(run_id) for run_id in ids]}
        return self._call("POST", "/v1/node/runs", None, headers=headers, json=body)["runs"]

    def code_bucket(self) -> str:
        """The group's code bucket (named by the gateway on first use; the publisher creates it in S3)."""
        return self._call("GET", "/v1/codes/bucket", self.require_api_secret())["bucket"]

    def publish_code(self, record: dict[str, Any]) -> dict[str, Any]:
        """Record an uploaded code: name, version, image_id, archive_sha256, object_key, size."""
        return self._call("POST", "/v1/codes", self.require_api_secret(), json=record)

    def create_group(self, name: str, *, operator_secret: str, admin_name: str = "admin") -> dict[str, Any]:
        return self._call(
            "POST", "/v1/groups", operator_secret, json={"name": name, "admin_name": admin_name}
        )

    def require_api_secret(self) -> str:
        if not self.api_secret:
            raise ConfigurationError("this needs your API secret: set LERULI_API_SECRET")
        return self.api_secret

    def _reader(self) -> str:
        credential = self.group_token or self.api_secret
        if not credential:
            raise ConfigurationError("this needs the group token or your API secret: set LERULI_GROUP_TOKEN")
        return credential

    def _call(self, method: str, path: str, credential: str | None, **kwargs: Any) -> Any:
        if credential is not None:
            kwargs["headers"] = {"Authorization": f"Bearer {credential}"}
        for attempt in range(BUSY_RETRIES + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise GatewayError(f"cannot reach the gateway at {self.baseurl}: {exc}", 0) from exc
            # 503 means the server changed nothing (busy database): the same request is safe to send again.
            if response.status_code != 503 or attempt == BUSY_RETRIES:
                break
            time.sleep(_retry_after(response, attempt))
        if response.status_code >= 400:
            detail = _detail(response)
            if response.status_code == 401:
                raise AuthenticationError(detail, 401)
            raise GatewayError(detail, response.status_code)
        return response.json()


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        hinted = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        hinted = 1.0
    return min(hinted * (1.5**attempt), 10.0)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}" for item in detail)
    return str(detail or f"HTTP {response.status_code} {response.reason_phrase}")
