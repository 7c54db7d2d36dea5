"""Repetition and aggregation: every figure is a median over runs after a warm-up."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping


@dataclass(frozen=True, slots=True)
class Figure:
    """The median of some samples, with their minimum and maximum."""

    median: float
    minimum: float
    maximum: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Iterable[float]) -> Figure:
        """Aggregate samples; raises ValueError when there are none."""
        values = tuple(samples)
        if not values:
            raise ValueError("A figure needs at least one sample; the measurement produced none.")
        return cls(statistics.median(values), min(values), max(values), values)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0-100) of the samples, nearest-rank."""
        ordered = sorted(self.samples)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def scaled(self, factor: float) -> Figure:
        """The same figure in another unit (e.g. seconds to milliseconds)."""
        return Figure.of(s * factor for s in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.minimum,
            "max": self.maximum,
            "samples": list(self.samples),
        }


def figures(samples: Iterable[Mapping[str, float]]) -> dict[str, Figure]:
    """Turn a list of {metric: value} runs into {metric: Figure}."""
    collected: dict[str, list[float]] = {}
    for run in samples:
        for metric, value in run.items():
            collected.setdefault(metric, []).append(value)
    return {metric: Figure.of(values) for metric, values in collected.items()}


def collect(
    run_once: Callable[[], Mapping[str, float]], *, repeats: int, warmup: int = 1
) -> dict[str, Figure]:
    """Call run_once `warmup` times discarding the result, then `repeats` times."""
    for _ in range(warmup):
        run_once()
    return figures(run_once() for _ in range(repeats))


async def acollect(
    run_once: Callable[[], Awaitable[Mapping[str, float]]], *, repeats: int, warmup: int = 1
) -> dict[str, Figure]:
    """The async form of `collect`."""
    for _ in range(warmup):
        await run_once()
    runs = [await run_once() for _ in range(repeats)]
    return figures(runs)
