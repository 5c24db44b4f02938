"""When each job's container started and ended, from the Docker engine's event stream.

The node removes a job's container when it ends, so `docker inspect` is too late to read `State.StartedAt`;
the engine's `start` and `die` events carry the same instant (in nanoseconds) and the flow run id label.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from leruli_prefect.worker.container_runner import FLOW_RUN_LABEL

if TYPE_CHECKING:
    import docker


class ContainerEvents:
    """Records `start` and `die` times (wall clock, seconds) of job containers, by flow run id.

    >>> with ContainerEvents(client) as events:
    ...     started_at = events.wait_for("start", job_id, timeout=30)
    """

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._times: dict[tuple[str, str], float] = {}
        self._changed = threading.Condition()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._follow, name="docker-events", daemon=True)

    def __enter__(self) -> ContainerEvents:
        self._stream = self._client.api.events(
            decode=True, filters={"type": "container", "event": ["start", "die"], "label": FLOW_RUN_LABEL}
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.close()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        try:
            for event in self._stream:
                flow_run_id = event.get("Actor", {}).get("Attributes", {}).get(FLOW_RUN_LABEL)
                if flow_run_id is None:
                    continue
                with self._changed:
                    self._times[(event["status"], flow_run_id)] = event["timeNano"] / 1e9
                    self._changed.notify_all()
        except Exception:  # noqa: BLE001 - the stream ends with an error when closed under it
            return

    def time_of(self, kind: str, flow_run_id: str) -> float | None:
        with self._changed:
            return self._times.get((kind, flow_run_id))

    def wait_for(self, kind: str, flow_run_id: str, timeout: float) -> float:
        """The wall-clock time of the container's `kind` event ("start" or "die"), waiting for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (kind, flow_run_id) not in self._times:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no container {kind} of job {flow_run_id} within {timeout} s")
                self._changed.wait(left)
            return self._times[(kind, flow_run_id)]
