"""Step functions for the multiprocess executor tests: importable at module level, as workers need."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.definitions.op import op
from runtime.definitions.retry import RetryRequested

if TYPE_CHECKING:
    from runtime.execution.context import StepContext


async def seed() -> int:
    return 20


def in_worker(x: int) -> tuple[int, int]:
    return os.getpid(), x + 1


def unpack(pair: tuple[int, int]) -> int:
    return pair[1] * 2


def fails(x: int) -> None:
    raise ValueError(f"cannot handle {x}")


def chatty(context: StepContext) -> int:
    print("printed in the worker")  # noqa: T201
    logging.getLogger("worker.user").warning("logged in the worker")
    context.log.info("context log in the worker, attempt %d", context.retry_number)
    context.add_output_metadata({"pid": os.getpid()})
    if context.retry_number == 0:
        raise RetryRequested(max_retries=1)
    return context.retry_number


def sleeps_forever(context: StepContext) -> None:
    Path(context.resources["pid_file"]).write_text(str(os.getpid()))
    time.sleep(30)


@op
def decorated(x: int) -> int:
    return x * 100


def here(x: int) -> int:
    """A plain sync step: runs in a thread of the executing process."""
    return os.getpid()


def logs_then_waits(context: StepContext) -> str:
    """Logs, then blocks until the test saw that log line arrive in the parent."""
    context.log.info("first line, before waiting")
    release = Path(context.resources["release_file"])
    deadline = time.monotonic() + 20
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the log line never reached the parent while the step ran")
        time.sleep(0.01)
    return "released"
