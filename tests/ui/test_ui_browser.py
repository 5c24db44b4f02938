"""The tenant-aware Prefect UI end to end: the real UI in headless Debian chromium, through the gateway.

Two groups hold jobs in several states; each group's member signs in through the UI's own login prompt with
their API secret and must see exactly their group's runs, pool, logs and events on the dashboard, the runs
list, a run page, the work pool page and the event feed; the other group's run URL shows "not found". Both
UIs Prefect 3.9.1 serves are walked: the classic one (/prefect) and the new one (/prefect/v2). Last, each
member rotates their API secret while signed in (one in each UI): the next page shows the login prompt.
Screenshots of every page, and what each page showed and called (result.json), are kept in
.stack/ui-screenshots/.

The browser is driven by tests/ui/ui_pages.js (playwright-core from npm, pinned in package-lock.json):
Python's playwright package brings its own browser build and a driver of its own, while playwright-core on
node drives Debian's /usr/bin/chromium directly, which is the browser the issue asks for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
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
# Prefect 3.9.1 serves two UIs: the classic one at /prefect and the new one (React) at /prefect/v2.
UIS = {"classic": "", "v2": "/v2"}


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


def _pages(group: Group, other: Group) -> list[dict[str, str]]:
    """The pages walked in each UI (both serve them at the same paths), with a text that shows each loaded."""
    completed = group.runs["completed"]
    return [
        {"name": "dashboard", "path": "/dashboard", "expect": group.pool},
        {"name": "runs", "path": "/runs", "expect": group.runs["scheduled"]["name"]},
        {"name": "run", "path": f"/runs/flow-run/{completed['id']}", "expect": group.log_marker},
        {"name": "pool", "path": f"/work-pools/work-pool/{group.pool}", "expect": completed["name"]},
        {"name": "events", "path": "/events", "expect": completed["name"]},
        {
            "name": "foreign-run",
            "path": f"/runs/flow-run/{other.runs['completed']['id']}",
            "expect": "not found",
        },
    ]


# The order of the walks: each member ends in a different UI, where they rotate their API secret (below).
WALKS = (("a", "classic"), ("b", "v2"), ("a", "v2"), ("b", "classic"))


def _plan(groups: dict[str, Group], base: str, profiles: Path) -> dict[str, Any]:
    walks = []
    for name, ui in WALKS:
        group, other = groups[name], groups["b" if name == "a" else "a"]
        walks.append(
            {
                "name": f"{group.name}-{ui}",
                "group": name,
                "ui": ui,
                "base": f"{base}{UIS[ui]}",
                "secret": group.member_secret,
                "pages": _pages(group, other),
            }
        )
    # Last, each member rotates their API secret while signed in: the next page they open signs them out.
    for name in groups:
        last = [walk for walk in walks if walk["group"] == name][-1]
        rotate = f"{base.removesuffix('/prefect')}/v1/users/me/secret"
        last["pages"].append({"name": "signed-out", "path": "/runs", "rotate": rotate, "expect_login": True})
    return {"screenshots": str(SCREENSHOTS), "profiles": str(profiles), "walks": walks}


# A server start, four sign-ins (two members in two UIs), two dozen pages: minutes on a loaded machine.
@pytest.mark.timeout(1800)
def test_each_member_sees_exactly_their_group(
    server: stack.Server, browser_ready: None, tmp_path: Path
) -> None:
    groups = {"a": _group(server, "uia"), "b": _group(server, "uib")}
    # The v2 event feed asks for events up to the current minute, rounded down: the groups' events, made
    # just now, show only once that minute has passed.
    time.sleep(61 - time.time() % 60)
    plan = _plan(groups, f"{server.url}/prefect", tmp_path)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    driven = subprocess.run(
        ["node", str(UI_DIR / "ui_pages.js"), str(tmp_path / "plan.json"), str(SCREENSHOTS / "result.json")],
        cwd=UI_DIR,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert driven.returncode == 0, driven.stderr[-3000:]
    print(driven.stderr)  # the time each page took to show
    result = json.loads((SCREENSHOTS / "result.json").read_text())

    wrong: dict[str, str] = {}
    for walk in plan["walks"]:
        group = groups[walk["group"]]
        other = groups["b" if walk["group"] == "a" else "a"]
        seen = result[walk["name"]]
        wrong.update(_wrong_pages(walk["name"], seen, group, other))
        # The UI walked is the one meant: neither UI sent the browser over to the other.
        for page_name, page in seen.items():
            if ("/prefect/v2/" in page["url"]) != (walk["ui"] == "v2"):
                wrong[f"{walk['name']} {page_name} URL"] = page["url"]
    assert not wrong, json.dumps(wrong, indent=1)


def _wrong_pages(walk: str, seen: dict[str, Any], group: Group, other: Group) -> dict[str, str]:
    """What one walk (a member in one UI) saw that it should not have, or did not see that it should."""
    wrong: dict[str, str] = {}
    if "signed-out" in seen:
        wrong.update(_wrong_sign_out(walk, seen["signed-out"]))
    for page_name, page in seen.items():
        if page_name == "signed-out":
            continue
        where = f"{walk} {page_name}"
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
            wrong[f"{walk} {page_name} misses"] = str(missing)
    run_page = seen["run"]["text"]
    if "Completed" not in run_page or group.log_marker not in run_page:
        wrong[f"{walk} run page"] = run_page[:300]
    foreign = seen["foreign-run"]
    if "not found" not in foreign["text"].lower():
        wrong[f"{walk} foreign run"] = foreign["text"][:300]
    if not any(a["status"] == 404 and "/flow_runs/" in a["path"] for a in foreign["answers"]):
        statuses = [(a["path"], a["status"]) for a in foreign["answers"]]
        wrong[f"{walk} foreign run API"] = str(statuses)
    return wrong


def _wrong_sign_out(walk: str, page: dict[str, Any]) -> dict[str, str]:
    """After rotating their secret, the member's next page must refuse the old one and show the login."""
    wrong = {}
    if page["rotated"] != 200:
        wrong[f"{walk} rotation"] = f"POST /v1/users/me/secret answered {page['rotated']}"
    if not page["shown"]:
        wrong[f"{walk} signed out"] = f"no login prompt after the rotation: {page['text'][:300]!r}"
    if not any(answer["status"] == 401 for answer in page["answers"]):
        wrong[f"{walk} signed out API"] = str([(a["path"][:80], a["status"]) for a in page["answers"]])
    return wrong
