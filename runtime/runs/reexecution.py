"""Re-execution from failure: which steps of an earlier run can be reused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.protocol.run_result import fold_events

if TYPE_CHECKING:
    from runtime.instance.records import RunRecord
    from runtime.instance.storage.base import RunStorage


async def steps_to_reuse(storage: RunStorage, parent: RunRecord) -> list[str]:
    """The steps that succeeded in `parent` (or that it reused itself): their stored
    outputs stand in for running them again."""
    events = await storage.get_events(parent.run_id)
    result = fold_events(parent.run_id, events, status=str(parent.status))
    succeeded = [key for key, step in result.steps.items() if step.status == "SUCCESS"]
    # A re-execution's reused steps never ran in it; they are still good.
    inherited: list[str] = []
    if parent.parent_run_id is not None:
        grandparent = await storage.get_run(parent.parent_run_id)
        if grandparent is not None:
            inherited = [
                key for key in await steps_to_reuse(storage, grandparent) if key not in result.steps
            ]
    return sorted({*succeeded, *inherited})
