"""Packing jobs onto one node by cores and memory: what is offered, what each running job holds.

Pure bookkeeping (no Prefect, no Docker), so the rules are easy to test: a node never starts a job that does
not fit in what is left, never claims a job bigger than itself, and gives each job its own CPUs when it can.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """What one job holds while it runs on this node."""

    cores: int
    memory_mb: int
    # The CPU ids pinned to the job (`cpuset_cpus`), or None when the node offers more cores than it has.
    cpus: tuple[int, ...] | None

    @property
    def cpuset(self) -> str | None:
        """Docker's `cpuset_cpus` form: `cpuset == "0,1"`."""
        return ",".join(map(str, self.cpus)) if self.cpus else None


class NodeCapacity:
    """The cores, memory and slots a node offers, and the claims of the jobs it holds.

    >>> capacity = NodeCapacity(cores=2, memory_mb=1000, slots=4, cpu_ids=[0, 1])
    >>> capacity.reserve("job-1", cores=1, memory_mb=600).cpuset
    '0'
    >>> capacity.reserve("job-2", cores=1, memory_mb=600) is None  # 400 MB left
    True
    """

    def __init__(self, *, cores: int, memory_mb: int, slots: int, cpu_ids: Sequence[int]) -> None:
        self.cores = cores
        self.memory_mb = memory_mb
        self.slots = slots
        # Pinning needs a real CPU for every offered core; an oversubscribed node relies on CPU quotas only.
        self._cpu_ids: tuple[int, ...] | None = tuple(cpu_ids[:cores]) if len(cpu_ids) >= cores else None
        self._claims: dict[Hashable, Claim] = {}
        # Jobs whose container has ended but whose outputs and state are still on their way out: they hold
        # no cores, memory or slot (the next job may start), but are still in hand (never claimed twice).
        self._winding_down: set[Hashable] = set()

    def fits_node(self, *, cores: int, memory_mb: int) -> bool:
        """Whether the job could ever run here; a bigger job is left for a bigger node."""
        return cores <= self.cores and memory_mb <= self.memory_mb

    def reserve(self, job: Hashable, *, cores: int, memory_mb: int) -> Claim | None:
        """Claim resources for `job`, or None when it does not fit in what is left now."""
        if job in self._claims:
            return None
        free_cores = self.cores - sum(claim.cores for claim in self._claims.values())
        free_memory = self.memory_mb - sum(claim.memory_mb for claim in self._claims.values())
        if len(self._claims) >= self.slots or cores > free_cores or memory_mb > free_memory:
            return None
        cpus = None
        if self._cpu_ids is not None:
            taken = {cpu for claim in self._claims.values() for cpu in claim.cpus or ()}
            cpus = tuple(cpu for cpu in self._cpu_ids if cpu not in taken)[:cores]
        claim = Claim(cores=cores, memory_mb=memory_mb, cpus=cpus)
        self._claims[job] = claim
        return claim

    def claim_of(self, job: Hashable) -> Claim | None:
        return self._claims.get(job)

    def holds(self, job: Hashable) -> bool:
        return job in self._claims or job in self._winding_down

    def has_free_slot(self) -> bool:
        return len(self._claims) < self.slots

    def wind_down(self, job: Hashable) -> None:
        """The job's container has ended: free its resources for the next job, keep the job in hand.

        >>> capacity = NodeCapacity(cores=1, memory_mb=100, slots=1, cpu_ids=[0])
        >>> _ = capacity.reserve("job-1", cores=1, memory_mb=100)
        >>> capacity.wind_down("job-1")
        >>> capacity.reserve("job-2", cores=1, memory_mb=100).cpuset, capacity.holds("job-1")
        ('0', True)
        """
        if self._claims.pop(job, None) is not None:
            self._winding_down.add(job)

    def release(self, job: Hashable) -> None:
        self._claims.pop(job, None)
        self._winding_down.discard(job)

    def release_all_but(self, jobs: Iterable[Hashable]) -> list[Hashable]:
        """Release every claim whose job is not among `jobs` (still in hand); returns the released jobs."""
        keep = set(jobs)
        released = [job for job in [*self._claims, *self._winding_down] if job not in keep]
        for job in released:
            self.release(job)
        return released

    @property
    def jobs(self) -> list[Hashable]:
        return list(self._claims)
