"""User code for the web tests: served by a real code server in each test.

Steps that must be caught mid-run wait for files under WEB_TEST_DIR, so a test
decides when they proceed instead of guessing with sleeps.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec

from runtime import Definitions, RunRequest, asset, job, op, schedule, sensor

CONTROL = Path(os.environ.get("WEB_TEST_DIR", "/tmp"))


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
def first_value() -> int:
    return 1


@op
def flaky() -> int:
    if not (CONTROL / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return 41


@op
def combine(a: int, b: int) -> int:
    return a + b


@job
def recoverable() -> None:
    combine(first_value(), flaky())


@op
def blocking_step() -> int:
    (CONTROL / "blocking_started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not (CONTROL / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("release never appeared")
        time.sleep(0.01)
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


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset
async def doubled(numbers: list[int]) -> list[int]:
    return [n * 2 for n in numbers]


@schedule(cron_schedule="0 * * * *", job=diamond, default_status="running")
def hourly(context: object) -> RunRequest:
    return RunRequest()


@sensor(job=diamond, minimum_interval_seconds=45)
def watcher(context: object) -> None:
    return None


defs = Definitions(
    assets=[numbers, doubled],
    jobs=[diamond, configured, recoverable, blocked, slow_async],
    schedules=[hourly],
    sensors=[watcher],
)
