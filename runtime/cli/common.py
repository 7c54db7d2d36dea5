"""Pieces several commands share: turning target flags into specs, formatting tables and events."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from runtime.protocol.messages import RunEvent
    from runtime.protocol.run_result import RunResult
    from runtime.workspace.spec import LocationSpec


def specs_from_args(args: argparse.Namespace) -> list[LocationSpec] | None:
    """The locations the command line names, or None after printing why the flags are invalid."""
    from pathlib import Path

    from runtime.errors import WorkspaceConfigError
    from runtime.workspace.targets import TargetOptions, resolve_targets

    try:
        return resolve_targets(TargetOptions.from_namespace(args), Path.cwd())
    except WorkspaceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns padded to fit; the last column is not padded."""
    everything = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header) - 1)]
    lines = []
    for row in everything:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def describe_event(event: RunEvent) -> str:
    """One line for an event: time, type, step and what its payload says."""
    from runtime.protocol import messages as m

    clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    millis = int((event.timestamp % 1) * 1000)
    payload = event.payload
    detail = ""
    if isinstance(payload, m.LogPayload):
        detail = f"[{payload.level}] {payload.message}"
    elif isinstance(payload, m.StepFailurePayload):
        detail = f"{payload.error.type}: {payload.error.message}"
    elif isinstance(payload, m.StepSuccessPayload):
        detail = f"in {payload.duration_seconds * 1000:.1f} ms"
    elif isinstance(payload, m.StepOutputPayload):
        detail = f"{payload.output_name} = {payload.value_repr}"
    elif isinstance(payload, m.StepSkippedPayload):
        detail = payload.reason
    elif isinstance(payload, m.StepRetryPayload):
        detail = f"retry {payload.retry_number} in {payload.delay_seconds:.2f} s"
    elif isinstance(payload, m.AssetMaterializationPayload):
        detail = payload.asset_key
    elif isinstance(payload, m.EnginePayload | m.RunFailurePayload):
        detail = payload.message
    step = event.step_key or "-"
    return f"{clock}.{millis:03d}  {event.sequence:>5}  {event.event_type:<22} {step:<24} {detail}".rstrip()


def parse_tags(values: Sequence[str]) -> dict[str, str] | None:
    """`k=v` flags into a dict, or None after printing which one is malformed."""
    tags: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            print(f"error: --tag {value!r} is not of the form key=value.", file=sys.stderr)
            return None
        tags[key] = val
    return tags


def format_steps(result: RunResult) -> str:
    """The table of a run's steps: status, duration, attempts and what went wrong."""
    rows = [
        (
            key,
            step.status,
            f"{step.duration * 1000:.1f} ms" if step.duration is not None else "-",
            str(step.attempts),
            f"{step.error.type}: {step.error.message}" if step.error else step.skip_reason or "",
        )
        for key, step in result.steps.items()
    ]
    return format_table(("STEP", "STATUS", "DURATION", "ATTEMPTS", "DETAIL"), rows)
