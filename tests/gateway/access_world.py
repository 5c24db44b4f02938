"""Two groups with every kind of caller, for the access matrix: the callers and the objects they aim at."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import httpx

from tests import stack

CALLERS = (
    "none",
    "malformed",
    *(f"{g}-{kind}" for g in "AB" for kind in ("token", "user", "admin", "disabled", "compute", "rotated")),
    "operator",
)
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


@dataclass
class World:
    server: stack.Server
    groups: dict[str, dict[str, str]]  # "A"/"B" -> init-group output
    secrets: dict[str, str] = field(default_factory=dict)  # caller -> its secret
    pools: dict[str, str] = field(default_factory=dict)
    deployments: dict[str, str] = field(default_factory=dict)
    flow_id: str = ""

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "none":
            return {}
        if caller == "malformed":
            return {"Authorization": "Token not-a-leruli-secret"}
        group, _, kind = caller.partition("-")
        if kind in ("compute", "rotated"):
            return {
                "X-Leruli-Group-Token": self.groups[group]["group_token"],
                "X-Leruli-Compute-Secret": self.secrets[caller],
            }
        return {"Authorization": f"Bearer {self.secrets[caller]}"}

    def call(self, caller: str, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.server.url}{path}", headers=self.headers(caller), json=body, timeout=30
        )

    def as_admin(self, group: str, method: str, path: str, body: object = None) -> httpx.Response:
        response = self.call(f"{group}-admin", method, path, body)
        assert response.status_code < 300, response.text
        return response

    def new_job(self, group: str = "A", *, ended: bool = False) -> str:
        """A queued job of the group's regular user (no node serves these groups, so it stays queued)."""
        spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "d" * 32}
        response = self.call(f"{group}-user", "POST", "/v1/jobs", spec)
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        if ended:
            self.as_admin(group, "POST", f"/v1/jobs/{job_id}/cancel")
        return job_id

    def new_user(self, group: str = "A") -> str:
        name = unique("target")
        self.as_admin(group, "POST", "/v1/users", {"name": name})
        return name

    def rotated(self, group: str, new_secret: str) -> None:
        """Keep the world's view of a group's compute secret current after a rotation."""
        self.secrets[f"{group}-compute"] = new_secret


def build_world(server: stack.Server) -> World:
    world = World(server, {"A": server.init_group(unique("ma")), "B": server.init_group(unique("mb"))})
    operator = {"Authorization": f"Bearer {server.operator_secret}"}
    world.secrets["operator"] = server.operator_secret
    for group, created in world.groups.items():
        world.secrets[f"{group}-token"] = created["group_token"]
        world.secrets[f"{group}-admin"] = created["api_secret"]
        world.secrets[f"{group}-rotated"] = created["compute_secret"]
        world.secrets[f"{group}-user"] = world.as_admin(group, "POST", "/v1/users", {"name": "alice"}).json()[
            "api_secret"
        ]
        disabled = world.as_admin(group, "POST", "/v1/users", {"name": "zed"}).json()["api_secret"]
        world.as_admin(group, "POST", "/v1/users/zed/disable")
        world.secrets[f"{group}-disabled"] = disabled
        world.secrets[f"{group}-compute"] = world.as_admin(group, "POST", "/v1/compute-secret").json()[
            "compute_secret"
        ]
        world.pools[group] = f"leruli-{created['group']}"
        pool = httpx.get(f"{server.url}/prefect/api/work_pools/{world.pools[group]}", headers=operator).json()
        deployments = httpx.post(
            f"{server.url}/prefect/api/deployments/filter",
            headers=operator,
            json={"work_pools": {"name": {"any_": [pool["name"]]}}},
        ).json()
        world.deployments[group] = deployments[0]["id"]
        world.flow_id = deployments[0]["flow_id"]
    return world
