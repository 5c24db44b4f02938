"""One row per figure, printed as a single table with its target and whether it was met."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """A measured value, what it was compared with, and the target it answers to."""

    row: str
    measure: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None  # None: no target for this figure

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def below(limit: float) -> Callable[[float], bool]:
    return lambda value: value < limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def format_table(figures: list[Figure]) -> str:
    """A Markdown table: readable in a terminal and pasteable into bench/RESULTS.md."""
    header = ("row", "measure", "value", "baseline", "ratio", "target", "")
    rows = [header] + [
        (
            f.row,
            f.measure,
            f.value,
            f.baseline,
            "" if f.ratio is None else f"{f.ratio:.2f}",
            f.target,
            f.verdict,
        )
        for f in figures
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(rows[0]), separator, *(line(row) for row in rows[1:])])
