"""A user rotates their own API secret through a real server: the old one is refused at once, on /v1 and in
the Prefect UI signed in with it; the new one works everywhere, the user's jobs stay theirs."""

from __future__ import annotations

import base64

import httpx

from tests import stack
from tests.gateway.access_world import unique


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _ui_sign_in(secret: str) -> dict[str, str]:
    """What the Prefect UI sends after its login prompt: Basic auth of what was typed."""
    return {"Authorization": f"Basic {base64.b64encode(secret.encode()).decode()}"}


def _rotate(server: stack.Server, secret: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/users/me/secret", headers=_bearer(secret), timeout=30)


def test_a_user_rotates_their_own_secret(server: stack.Server) -> None:
    group = server.init_group(unique("rot"))
    added = httpx.post(
        f"{server.url}/v1/users", headers=_bearer(group["api_secret"]), json={"name": "ada"}, timeout=30
    )
    old = added.json()["api_secret"]
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "c" * 32}
    job = httpx.post(f"{server.url}/v1/jobs", headers=_bearer(old), json=spec, timeout=30).json()["id"]
    ui_count = f"{server.url}/prefect/api/flow_runs/count"
    assert httpx.post(ui_count, headers=_ui_sign_in(old), json={}, timeout=30).json() == 1  # signed in

    rotated = _rotate(server, old)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["api_secret"]
    assert rotated.json()["name"] == "ada" and new.startswith("lq_user_") and new != old

    # The old secret: refused by the very next request, on /v1 and in the UI (whose 401 signs it out).
    whoami = f"{server.url}/v1/whoami"
    assert httpx.get(whoami, headers=_bearer(old), timeout=30).status_code == 401
    assert httpx.post(ui_count, headers=_ui_sign_in(old), json={}, timeout=30).status_code == 401
    version = f"{server.url}/prefect/api/admin/version"
    assert httpx.get(version, headers=_ui_sign_in(old), timeout=30).status_code == 401  # nor sign in again
    assert _rotate(server, old).status_code == 401
    # The new one: the same user, their jobs still theirs.
    assert httpx.get(whoami, headers=_bearer(new), timeout=30).json()["user"] == "ada"
    assert httpx.post(ui_count, headers=_ui_sign_in(new), json={}, timeout=30).json() == 1
    cancel = httpx.post(f"{server.url}/v1/jobs/{job}/cancel", headers=_bearer(new), timeout=30)
    assert cancel.status_code == 200, cancel.text

    # Only a user has an API secret to rotate: the group token has none.
    assert _rotate(server, group["group_token"]).status_code == 403
    audit = httpx.get(f"{server.url}/v1/audit", headers=_bearer(group["group_token"]), timeout=30).json()
    actions = {(e["actor"], e["action"], e["outcome"]) for e in audit["entries"]}
    assert ("user:ada", "rotate own API secret", "ok") in actions
    assert old not in str(audit) and new not in str(audit)


def test_an_admin_keeps_their_role_after_rotating(server: stack.Server) -> None:
    group = server.init_group(unique("rotadmin"))
    new = _rotate(server, group["api_secret"]).json()["api_secret"]
    added = httpx.post(f"{server.url}/v1/users", headers=_bearer(new), json={"name": "bo"}, timeout=30)
    assert added.status_code == 201, added.text
    refused = httpx.post(f"{server.url}/v1/users", headers=_bearer(group["api_secret"]), json={"name": "cy"})
    assert refused.status_code == 401
