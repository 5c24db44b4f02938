"""Signing in to the Prefect UI as a member of a group.

With Basic auth on (the server's own auth string), Prefect's UI shows one password field, sends
`GET /api/admin/version` with what was typed as `Authorization: Basic base64(typed)`, and then sends the same
header with every call; a 401 clears it and shows the prompt again. So a member signs in by typing their
API secret (or the group token, to view read-only) into that prompt: every request is resolved again from
the gateway's database, so a disabled user or a rotated-out secret gets 401 at the next request, which
signs the browser out. Upstream, the guard sends the server's own credential; the browser never sees it.

The tenant path is the browser's: it takes Basic auth only. A Bearer API secret on `/prefect/api` stays
refused, so the Prefect API does not become a second REST API for scripts beside /v1.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from leruli_prefect.gateway.callers import Caller
from leruli_prefect.gateway.security import SecretKind

# What `GET /api/admin/settings` answers a tenant: the server's settings are the operator's business, but
# the UI reads them (a refusal brings back an "Upgrade" promotion), so it gets the UI's own part only.
SETTINGS_STUB = {"server": {"ui": {"show_promotional_content": False}}}
STORAGE_STUB = {"default_result_storage_block_id": None}


@dataclass(frozen=True)
class Tenant:
    """A group member signed in to the UI: what they may see (their group's pool) and do."""

    caller: Caller

    @property
    def group_name(self) -> str:
        assert self.caller.group is not None
        return self.caller.group.name

    @property
    def pool(self) -> str:
        assert self.caller.group is not None
        return self.caller.group.work_pool

    @property
    def deployment_id(self) -> UUID:
        assert self.caller.group is not None
        return UUID(self.caller.group.deployment_id)

    @property
    def flow_id(self) -> UUID:
        assert self.caller.group is not None
        return UUID(self.caller.group.flow_id)

    @property
    def read_only(self) -> bool:
        """The group token views; only a user (an API secret) acts."""
        return self.caller.user is None


def tenant_of(caller: Caller, authorization: str | None) -> Tenant | None:
    """The tenant a UI sign-in makes of this caller, or None when the request is not one."""
    if caller.kind not in (SecretKind.user, SecretKind.group) or caller.group is None:
        return None
    scheme, _, _ = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    return Tenant(caller)
