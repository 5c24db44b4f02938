"""The tenant-aware Prefect UI end to end: the real UI in headless Debian chromium, through the gateway.

Two groups hold jobs in several states; each group's member signs in through the UI's own login prompt with
their API secret and must see exactly their group's runs, pool, logs and events on the dashboard, the runs
list, a run page, the work pool page and the event feed; the other group's run URL shows "not found".
Screenshots of every page are kept in .stack/ui-screenshots/.

The browser is driven by tests/ui/ui_pages.js (playwright-core from npm, pinned in package-lock.json):
Python's playwright package brings its own browser build and a driver of its own, while playwright-core on
node drives Debian's /usr/bin/chromium directly, which is the browser the issue asks for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import stack
from tests.gateway.access_world import unique

UI_DIR = Path(__file__).resolve().parent
SCREENSHOTS = stack.REPO / ".stack" / "ui-screenshots"
# The pages checked for each member, with a text that shows each has loaded.
PAGES = ("dashboard", "runs", "run", "pool", "events")


@dataclass
class Group:
    name: str
    pool: str
    member_secret: str
    runs: dict[str, dict[str, Any]]  # state -> the run (id, name)
    log_marker: str

    def markers(self) -> list[str]:
        names = [run["name"] for run in self.runs.values()]
        return [self.pool, self.log_marker, *names, *(run["id"] for run in self.runs.values())]


@pytest.fixture(scope="module")
def browser_ready() -> None:
    """Debian's chromium and playwright-core (npm ci), installed by the project's script if missing."""
    subprocess.run([stack.REPO / "scripts" / "chromium.sh"], check=True, capture_output=True, timeout=900)


def _operator(server: stack.Server, method: str, path: str, body: object = None) -> Any:
    response = httpx.request(
        method,
        f"{server.url}/prefect/api{path}",
        headers={"Authorization": f"Bearer {server.operator_secret}"},
        json=body,
        timeout=60,
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _set_state(server: stack.Server, run_id: str, state: str, message: str = "") -> None:
    """What a node reports for a job it ran (the states are what the UI shows; no container needed)."""
    body = {"state": {"type": state, "name": state.title(), "message": message}, "force": True}
    _operator(server, "POST", f"/flow_runs/{run_id}/set_state", body)


def _group(server: stack.Server, prefix: str) -> Group:
    created = server.init_group(unique(prefix))
    admin = {"Authorization": f"Bearer {created['api_secret']}"}
    member = httpx.post(f"{server.url}/v1/users", headers=admin, json={"name": "ada"}, timeout=30).json()
    headers = {"Authorization": f"Bearer {member['api_secret']}"}
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "f" * 32}
    runs = {}
    for state in ("completed", "failed", "cancelled", "running", "scheduled"):
        response = httpx.post(f"{server.url}/v1/jobs", headers=headers, json=spec, timeout=30)
        assert response.status_code == 201, response.text
        runs[state] = response.json()
    marker = unique(f"output-of-{created['group']}-")
    for state in ("completed", "failed", "running"):
        _set_state(server, runs[state]["id"], "RUNNING")
        log = {"name": "leruli", "level": 20, "message": marker, "timestamp": "2026-01-01T00:00:00Z"}
        _operator(server, "POST", "/logs/", [{**log, "flow_run_id": runs[state]["id"]}])
    _set_state(server, runs["completed"]["id"], "COMPLETED")
    _set_state(server, runs["failed"]["id"], "FAILED", "exit code 1")
    cancel_url = f"{server.url}/v1/jobs/{runs['cancelled']['id']}/cancel"
    cancelled = httpx.post(cancel_url, headers=headers, timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    return Group(created["group"], created["work_pool"], member["api_secret"], runs, marker)


def _plan(groups: dict[str, Group], profiles: Path) -> dict[str, Any]:
    members = []
    for name, group in groups.items():
        other = groups["b" if name == "a" else "a"]
        completed = group.runs["completed"]
        members.append(
            {
                "name": group.name,
                "secret": group.member_secret,
                "pages": [
                    {"name": "dashboard", "path": "/dashboard", "expect": group.pool},
                    {"name": "runs", "path": "/runs", "expect": group.runs["scheduled"]["name"]},
                    {"name": "run", "path": f"/runs/flow-run/{completed['id']}", "expect": group.log_marker},
                    {
                        "name": "pool",
                        "path": f"/work-pools/work-pool/{group.pool}",
                        "expect": completed["name"],
                    },
                    {"name": "events", "path": "/events", "expect": completed["name"]},
                    {
                        "name": "foreign-run",
                        "path": f"/runs/flow-run/{other.runs['completed']['id']}",
                        "expect": "not found",
                    },
                ],
            }
        )
    return {"base": "", "screenshots": str(SCREENSHOTS), "profiles": str(profiles), "members": members}


# A server start, two sign-ins and a dozen pages: about 2.5 min on an idle 2-core machine, more when loaded.
@pytest.mark.timeout(900)
def test_each_member_sees_exactly_their_group(
    server: stack.Server, browser_ready: None, tmp_path: Path
) -> None:
    groups = {"a": _group(server, "uia"), "b": _group(server, "uib")}
    plan = _plan(groups, tmp_path)
    plan["base"] = f"{server.url}/prefect"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    driven = subprocess.run(
        ["node", str(UI_DIR / "ui_pages.js"), str(tmp_path / "plan.json"), str(tmp_path / "result.json")],
        cwd=UI_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert driven.returncode == 0, driven.stderr[-3000:]
    print(driven.stderr)  # the time each page took to show
    result = json.loads((tmp_path / "result.json").read_text())

    wrong: dict[str, str] = {}
    for name, group in groups.items():
        other = groups["b" if name == "a" else "a"]
        seen = result[group.name]
        for page_name, page in seen.items():
            where = f"{group.name} {page_name}"
            if not page["shown"]:
                wrong[where] = f"never showed what it should: {page['text'][:300]!r}"
            answers = " ".join(answer["body"] for answer in page["answers"])
            leaked = [marker for marker in other.markers() if marker in page["text"] or marker in answers]
            if leaked:
                wrong[where + " leaks"] = str(leaked)
            failed = [
                (a["method"], a["path"][:80], a["status"])
                for a in page["answers"]
                if a["status"] >= 400 and page_name != "foreign-run"
            ]
            if failed:
                wrong[where + " API errors"] = str(failed)
            assert Path(page["screenshot"]).stat().st_size > 0
        # Exactly the group's runs: every one of them in the runs list, the pool's runs and the event feed.
        for page_name in ("runs", "pool", "events"):
            text = seen[page_name]["text"]
            missing = [run["name"] for run in group.runs.values() if run["name"] not in text]
            if missing:
                wrong[f"{group.name} {page_name} misses"] = str(missing)
        run_page = seen["run"]["text"]
        if "Completed" not in run_page or group.log_marker not in run_page:
            wrong[f"{group.name} run page"] = run_page[:300]
        foreign = seen["foreign-run"]
        if "not found" not in foreign["text"].lower():
            wrong[f"{group.name} foreign run"] = foreign["text"][:300]
        if not any(a["status"] == 404 and "/flow_runs/" in a["path"] for a in foreign["answers"]):
            statuses = [(a["path"], a["status"]) for a in foreign["answers"]]
            wrong[f"{group.name} foreign run API"] = str(statuses)
    assert not wrong, json.dumps(wrong, indent=1)
