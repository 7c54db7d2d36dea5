"""RunRequest and SkipReason: what a schedule or sensor function returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Ask for one run of `job_name` (default: the schedule's or sensor's job).

    A sensor never launches two runs with the same `run_key`.
    """

    run_key: str | None = None
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    job_name: str | None = None


@dataclass(frozen=True, slots=True)
class SkipReason:
    """Say why a tick requested no run; shown with the tick."""

    message: str = ""
