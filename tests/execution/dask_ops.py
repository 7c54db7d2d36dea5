"""Step functions for the dask executor tests: module level, so Dask workers import them by name.

Steps coordinate with the test through files in `context.resources["dir"]`,
never through sleeps: a barrier proves steps run at once, a file the test
writes releases a step it is watching.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.definitions.retry import RetryRequested

if TYPE_CHECKING:
    from runtime.execution.context import StepContext

WAIT_LIMIT = 30.0


def wait_for(path: Path, what: str) -> None:
    """Block until `path` exists; TimeoutError naming `what` after WAIT_LIMIT seconds."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


def barrier(folder: Path, name: str, count: int) -> None:
    """Mark `name` as started and wait until `count` steps have: they run at the same time."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while len(list(folder.iterdir())) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: fewer than {count} steps ever ran at once")
        time.sleep(0.02)


def seed() -> int:
    return 10


def report(x: int, context: StepContext) -> dict[str, int]:
    """A fan-out step: waits for a second one to run beside it, returns where it ran."""
    barrier(Path(context.resources["dir"]) / "barrier", context.step_key, 2)
    print(f"{context.step_key} runs in {os.getpid()}")  # noqa: T201
    return {"pid": os.getpid(), "value": x + 1}


async def async_report(x: int, context: StepContext) -> dict[str, int]:
    """An async fan-out step: awaited on the worker's event loop."""
    await asyncio.sleep(0)
    context.log.info("async step on the worker's loop")
    return {"pid": os.getpid(), "value": x + 2}


def total(a: dict[str, int], b: dict[str, int], c: dict[str, int], d: dict[str, int]) -> int:
    return a["value"] + b["value"] + c["value"] + d["value"]


def fails(x: int) -> None:
    raise ValueError(f"cannot handle {x}")


def after(x: object) -> int:
    return 1


def flaky(context: StepContext) -> int:
    """Fails on its first attempt (RetryPolicy), asks for a retry on its second (RetryRequested)."""
    logging.getLogger("dask.flaky").warning("attempt %d", context.retry_number)
    if context.retry_number == 0:
        raise RuntimeError("the first attempt fails")
    if context.retry_number == 1:
        raise RetryRequested(max_retries=2)
    return context.retry_number


def waits_for_cancel(context: StepContext) -> str:
    """Says it started, then runs until it sees the run is being canceled."""
    folder = Path(context.resources["dir"])
    (folder / "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while not context.is_cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("never saw the cancellation")
        time.sleep(0.02)
    (folder / "saw_cancel").write_text(str(os.getpid()))
    return "stopped"


def dies_on_first_attempt(context: StepContext) -> int:
    """Kills its own worker process mid-step on attempt 0."""
    if context.retry_number == 0:
        (Path(context.resources["dir"]) / "killed").write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def always_dies(context: StepContext) -> int:
    (Path(context.resources["dir"]) / "killed").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def logs_then_waits(context: StepContext) -> int:
    """Logs and prints, then waits until the test saw those events arrive while it still ran."""
    context.log.info("halfway there")
    print("printed on the worker")  # noqa: T201
    wait_for(Path(context.resources["dir"]) / "seen", "the test to see the step's log")
    context.log.info("done")
    return 1


def unpicklable() -> object:
    return lambda: None


def fails_unless_fixed(x: int, context: StepContext) -> int:
    """Fails until the test writes the `fixed` file (re-execution from failure)."""
    if not (Path(context.resources["dir"]) / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return x * 3
