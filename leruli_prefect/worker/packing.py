"""Packing jobs onto one node by cores and memory: what is offered, what each running job holds.

Pure bookkeeping (no Prefect, no Docker), so the rules are easy to test: a node never starts a job that does
not fit in what is left, never claims a job bigger than itself, and gives each job its own CPUs when it can.
A node may also hold a few jobs ready in a line (claimed, inputs staged) that take the next free room in
the order they came (`prefetch`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple


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


class Asked(NamedTuple):
    cores: int
    memory_mb: int


class NodeCapacity:
    """The cores, memory and slots a node offers, and the claims of the jobs it holds.

    >>> capacity = NodeCapacity(cores=2, memory_mb=1000, slots=4, cpu_ids=[0, 1])
    >>> capacity.reserve("job-1", cores=1, memory_mb=600).cpuset
    '0'
    >>> capacity.reserve("job-2", cores=1, memory_mb=600) is None  # 400 MB left
    True
    """

    def __init__(
        self, *, cores: int, memory_mb: int, slots: int, cpu_ids: Sequence[int], line: int = 0
    ) -> None:
        self.cores = cores
        self.memory_mb = memory_mb
        self.slots = slots
        self.line = line  # how many jobs may wait in line for room
        # Pinning needs a real CPU for every offered core; an oversubscribed node relies on CPU quotas only.
        self._cpu_ids: tuple[int, ...] | None = tuple(cpu_ids[:cores]) if len(cpu_ids) >= cores else None
        self._claims: dict[Hashable, Claim] = {}
        # Jobs whose container has ended but whose outputs and state are still on their way out: they hold
        # no cores, memory or slot (the next job may start), but are still in hand (never claimed twice).
        self._winding_down: set[Hashable] = set()
        self._waiting: dict[Hashable, Asked] = {}  # in the order they came
        # Closed when a job waited too long and went back to the queue; open again once a job's container
        # ends (until then the line would only take that job back, or one as long to wait).
        self._line_open = True

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

    def reserve_or_wait(self, job: Hashable, *, cores: int, memory_mb: int) -> bool:
        """Claim resources for `job` now, or put it in line for them; False when neither can be done.

        A job never overtakes one waiting in line.

        >>> capacity = NodeCapacity(cores=1, memory_mb=100, slots=1, cpu_ids=[0], line=1)
        >>> [capacity.reserve_or_wait(job, cores=1, memory_mb=10) for job in ("a", "b", "c")]
        [True, True, False]
        >>> capacity.is_waiting("b"), capacity.claim_of("b")
        (True, None)
        """
        if not self._waiting and self.reserve(job, cores=cores, memory_mb=memory_mb) is not None:
            return True
        if not self._line_open or len(self._waiting) >= self.line:
            return False
        self._waiting[job] = Asked(cores, memory_mb)
        return True

    def admit(self) -> list[Hashable]:
        """Give the jobs at the head of the line the room that is free now; returns those admitted.

        >>> capacity = NodeCapacity(cores=1, memory_mb=100, slots=1, cpu_ids=[0], line=2)
        >>> [capacity.reserve_or_wait(job, cores=1, memory_mb=10) for job in ("a", "b", "c")]
        [True, True, True]
        >>> capacity.wind_down("a")
        >>> capacity.admit(), capacity.claim_of("b").cpuset, capacity.is_waiting("c")
        (['b'], '0', True)
        """
        admitted = []
        for job, asked in list(self._waiting.items()):
            if self.reserve(job, cores=asked.cores, memory_mb=asked.memory_mb) is None:
                break  # first come, first served: nobody behind it goes first
            del self._waiting[job]
            admitted.append(job)
        return admitted

    def is_waiting(self, job: Hashable) -> bool:
        return job in self._waiting

    def give_back(self, job: Hashable) -> None:
        """`job` waited too long and went back to the queue: out of the line, which takes nobody new until
        a job's container ends."""
        self.release(job)
        self._line_open = False

    def claim_of(self, job: Hashable) -> Claim | None:
        return self._claims.get(job)

    def holds(self, job: Hashable) -> bool:
        return job in self._claims or job in self._winding_down or job in self._waiting

    def has_free_slot(self) -> bool:
        return len(self._claims) < self.slots

    def has_room(self) -> bool:
        """Whether a poll could take a job: a free slot, or a place in the line."""
        if self._waiting:
            return self._line_open and len(self._waiting) < self.line
        return self.has_free_slot() or (self._line_open and self.line > 0)

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
            self._line_open = True

    def release(self, job: Hashable) -> None:
        if self._claims.pop(job, None) is not None:
            self._line_open = True
        self._winding_down.discard(job)
        self._waiting.pop(job, None)

    def release_all_but(self, jobs: Iterable[Hashable]) -> list[Hashable]:
        """Release every claim whose job is not among `jobs` (still in hand); returns the released jobs."""
        keep = set(jobs)
        released = [job for job in [*self._claims, *self._winding_down, *self._waiting] if job not in keep]
        for job in released:
            self.release(job)
        return released

    @property
    def jobs(self) -> list[Hashable]:
        return list(self._claims)
