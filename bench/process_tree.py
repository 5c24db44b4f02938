"""A process and its descendants, read from /proc (the parts of the stack fork helpers)."""

from __future__ import annotations

from pathlib import Path


def with_descendants(pid: int) -> list[int]:
    """`pid` and every process below it, as far as they still run."""
    return [pid, *descendants(pid)]


def descendants(pid: int) -> list[int]:
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(child) for child in children_file.read_text().split()] if children_file.exists() else []
    return children + [grandchild for child in children for grandchild in descendants(child)]
