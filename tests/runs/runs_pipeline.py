"""User code for the run tests: served by a real code server in each test.

Steps that must be caught mid-run block on files under RUNS_TEST_DIR, so a
test decides when they proceed instead of guessing with sleeps.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec

from runtime import Definitions, RetryPolicy, asset, job, op

CONTROL = Path(os.environ.get("RUNS_TEST_DIR", "/tmp"))


def _wait_for(name: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not (CONTROL / name).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} never appeared in {CONTROL}")
        time.sleep(0.01)


@op
def one() -> int:
    return 1


@op
async def add_one(n: int) -> int:
    return n + 1


@op
def total(a: int, b: int) -> int:
    return a + b


@job
def diamond() -> None:
    start = one()
    total(add_one(start), add_one(start))


class Greeting(msgspec.Struct):
    name: str
    times: int = 1


@op
def greet(config: Greeting) -> str:
    return " ".join([f"hello {config.name}"] * config.times)


@job
def configured() -> None:
    greet()


@op
def explode() -> int:
    raise ValueError("the source is empty")


@op
def after_explode(n: int) -> int:
    return n


@job
def failing() -> None:
    after_explode(explode())


@op
def flaky_once() -> int:
    # Fails until the test drops the file that lets it pass: re-execution fixes it.
    if not (CONTROL / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return 41


@op
def first_value() -> int:
    (CONTROL / f"first_value_ran_{time.time_ns()}").write_text(str(os.getpid()))
    return 1


@op
def combine(a: int, b: int) -> int:
    return a + b


@job
def recoverable() -> None:
    combine(first_value(), flaky_once())


@op
def blocking_step() -> int:
    (CONTROL / "blocking_started").write_text(str(os.getpid()))
    _wait_for("release")
    return 7


@op
def after_block(n: int) -> int:
    return n * 2


@job
def blocked() -> None:
    after_block(blocking_step())


@op
async def long_async() -> int:
    (CONTROL / "async_started").write_text(str(os.getpid()))
    await asyncio.sleep(60)
    return 0


@job
def slow_async() -> None:
    long_async()


@op
def whoami() -> int:
    return os.getpid()


@job(tags={"team": "data", "kind": "probe"})
def pid_job() -> None:
    whoami()


@op(retry_policy=RetryPolicy(max_retries=2, delay=0.01))
def retried() -> str:
    marker = CONTROL / "retried_attempts"
    attempts = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(attempts + 1))
    if attempts < 2:
        raise ConnectionError(f"attempt {attempts + 1} failed")
    return "ok"


@job
def retrying() -> None:
    retried()


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
async def doubled(numbers: list[int]) -> list[int]:
    return [n * 2 for n in numbers]


defs = Definitions(
    assets=[numbers, doubled],
    jobs=[diamond, configured, failing, recoverable, blocked, slow_async, pid_job, retrying],
)
