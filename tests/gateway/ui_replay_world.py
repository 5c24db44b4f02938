"""Two groups seen through the tenant-aware Prefect UI: callers signed in the UI's way (Basic auth of what
was typed in its prompt), each group's objects (jobs, a task run, an artifact, logs, events) and the
markers that give each group's objects away in any answer."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import httpx

from tests import stack
from tests.gateway.access_world import World, build_world, unique

# The kinds of caller the replay sends every request as. "A-*" are members of group A, "B-user" a member
# of the other group, "A-bearer" a member's API secret sent as a script would (not the UI's sign-in).
UI_CALLERS = ("operator", "A-admin", "A-user", "A-token", "A-disabled", "B-user")
TENANTS = ("A-admin", "A-user", "A-token")


@dataclass
class GroupObjects:
    pool: str
    pool_id: str
    deployment: str
    deployment_name: str
    queue_id: str
    user_job: str  # queued, owned by the regular user
    admin_job: str  # queued, owned by the admin
    ended_job: str  # cancelled
    task_run: str
    artifact: str
    log_marker: str
    run_names: list[str] = field(default_factory=list)

    def markers(self) -> list[str]:
        """Strings that only an answer holding one of this group's objects can contain."""
        return [
            self.pool,
            self.pool_id,
            self.deployment,
            self.queue_id,
            self.user_job,
            self.admin_job,
            self.ended_job,
            self.task_run,
            self.artifact,
            self.log_marker,
            *self.run_names,
        ]


@dataclass
class UiWorld:
    world: World
    objects: dict[str, GroupObjects]  # "A"/"B"
    flow_id: str

    @property
    def url(self) -> str:
        return self.world.server.url

    def secret(self, caller: str) -> str:
        return self.world.secrets[caller]

    def call(
        self, caller: str, method: str, path: str, body: object = None, *, bearer: bool = False
    ) -> httpx.Response:
        """`path` under /prefect/api, signed in as the UI signs in (Basic auth of the typed secret)."""
        secret = self.secret(caller)
        scheme = "Bearer" if bearer else "Basic"
        value = secret if bearer else base64.b64encode(secret.encode()).decode()
        return httpx.request(
            method,
            f"{self.url}/prefect/api{path}",
            headers={"Authorization": f"{scheme} {value}"},
            json=body,
            timeout=60,
        )

    def operator(self, method: str, path: str, body: object = None) -> httpx.Response:
        response = self.call("operator", method, path, body)
        assert response.status_code < 300, response.text
        return response

    def run_state(self, run_id: str) -> tuple[str, list[str]]:
        run = self.operator("GET", f"/flow_runs/{run_id}").json()
        return run["state_type"], run["tags"]


def _job(world: World, group: str, caller: str) -> str:
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "e" * 32}
    response = world.call(f"{group}-{caller}", "POST", "/v1/jobs", spec)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _group_objects(ui: UiWorld, group: str) -> GroupObjects:
    world = ui.world
    pool = world.pools[group]
    pool_id = ui.operator("GET", f"/work_pools/{pool}").json()["id"]
    deployment = ui.operator("GET", f"/deployments/{world.deployments[group]}").json()
    queue = ui.operator("POST", f"/work_pools/{pool}/queues/filter", {}).json()[0]
    user_job, admin_job, ended_job = (
        _job(world, group, "user"),
        _job(world, group, "admin"),
        _job(world, group, "user"),
    )
    world.as_admin(group, "POST", f"/v1/jobs/{ended_job}/cancel")
    task_run = ui.operator(
        "POST",
        "/task_runs/",
        {
            "flow_run_id": user_job,
            "task_key": unique("key"),
            "dynamic_key": "0",
            "name": unique(f"task{group}"),
        },
    ).json()["id"]
    artifact = ui.operator(
        "POST",
        "/artifacts/",
        {"key": unique(f"art-{group.lower()}-"), "type": "markdown", "data": "x", "flow_run_id": user_job},
    ).json()["id"]
    marker = unique(f"log-marker-{group}-")
    log = {"name": "t", "level": 20, "message": marker, "timestamp": "2026-01-01T00:00:00Z"}
    ui.operator(
        "POST",
        "/logs/",
        [{**log, "flow_run_id": user_job}, {**log, "flow_run_id": user_job, "task_run_id": task_run}],
    )
    names = [
        ui.operator("GET", f"/flow_runs/{run}").json()["name"] for run in (user_job, admin_job, ended_job)
    ]
    return GroupObjects(
        pool=pool,
        pool_id=pool_id,
        deployment=deployment["id"],
        deployment_name=deployment["name"],
        queue_id=queue["id"],
        user_job=user_job,
        admin_job=admin_job,
        ended_job=ended_job,
        task_run=task_run,
        artifact=artifact,
        log_marker=marker,
        run_names=names,
    )


def build_ui_world(server: stack.Server) -> UiWorld:
    world = build_world(server)
    ui = UiWorld(world, {}, world.flow_id)
    for group in "AB":
        ui.objects[group] = _group_objects(ui, group)
    _wait_for_events(ui)
    return ui


def _wait_for_events(ui: UiWorld, timeout: float = 60) -> None:
    """Events reach the database through Prefect's event pipeline a moment later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = []
        for group in "AB":
            pool = f"prefect.work-pool.{ui.objects[group].pool_id}"
            page = ui.operator(
                "POST", "/events/filter", {"filter": {"any_resource": {"id": [pool]}}, "limit": 1}
            )
            counts.append(page.json()["total"])
        if all(count >= 3 for count in counts):
            return
        time.sleep(0.5)
    raise AssertionError(f"the groups' events did not arrive within {timeout} s")
