"""Pools without a limit are named at run start; in-process runs take max_concurrent and pool_limits."""

from __future__ import annotations

import threading
import time

import pytest

from runtime import asset, job, materialize, op
from runtime.execution.in_process import ExecuteInProcessResult, execute_job_in_process
from runtime.protocol.messages import EnginePayload


class Concurrency:
    """How many steps were inside at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


DB = Concurrency()
ANY = Concurrency()


@op(pool="db")
def query_a() -> int:
    with DB, ANY:
        time.sleep(0.05)
    return 1


@op(pool="db")
def query_b() -> int:
    with DB, ANY:
        time.sleep(0.05)
    return 2


@op(pool="db")
def query_c() -> int:
    with DB, ANY:
        time.sleep(0.05)
    return 3


@op(pool="cache")
def warm() -> int:
    with ANY:
        time.sleep(0.05)
    return 4


@op
def free() -> int:
    with ANY:
        time.sleep(0.05)
    return 5


@job
def pooled() -> None:
    query_a()
    query_b()
    query_c()
    warm()
    free()


@asset(pool="warehouse")
def loaded() -> int:
    return 1


@asset(pool="warehouse")
def reported(loaded: int) -> int:
    return loaded + 1


def engine_messages(result: ExecuteInProcessResult) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.event_type == "ENGINE_EVENT":
            assert isinstance(event.payload, EnginePayload)
            messages.append(event.payload.message)
    return messages


def reset() -> None:
    DB.most = ANY.most = 0


def test_pools_without_a_limit_are_named_once_at_run_start() -> None:
    reset()
    result = execute_job_in_process(pooled)
    assert result.success
    assert [e.event_type for e in result.all_events[:2]] == ["RUN_START", "ENGINE_EVENT"]
    assert engine_messages(result) == [
        "Steps of pools 'cache', 'db' run without a limit: set executor.pools.cache, "
        "executor.pools.db in instance.yaml (or pass pool_limits when executing in process)."
    ]
    # Unlimited indeed: the three db steps overlapped.
    assert DB.most >= 2


def test_pool_limits_and_max_concurrent_reach_the_executor() -> None:
    reset()
    result = execute_job_in_process(pooled, pool_limits={"db": 1})
    assert result.success
    assert DB.most == 1
    # Only the pool still without a limit is named, with the singular wording.
    assert engine_messages(result) == [
        "Steps of pool 'cache' run without a limit: set executor.pools.cache in instance.yaml "
        "(or pass pool_limits when executing in process)."
    ]

    reset()
    result = execute_job_in_process(pooled, pool_limits={"db": 2, "cache": 1}, max_concurrent=2)
    assert result.success
    assert ANY.most <= 2 and DB.most <= 2
    assert engine_messages(result) == []


def test_materialize_takes_pool_limits() -> None:
    result = materialize([loaded, reported])
    assert engine_messages(result) == [
        "Steps of pool 'warehouse' run without a limit: set executor.pools.warehouse in "
        "instance.yaml (or pass pool_limits when executing in process)."
    ]
    result = materialize([loaded, reported], pool_limits={"warehouse": 1}, max_concurrent=1)
    assert result.asset_value("reported") == 2
    assert engine_messages(result) == []


def test_bad_limits_are_refused_before_the_run() -> None:
    with pytest.raises(ValueError, match="The limit of pool 'db' must be >= 1, got 0"):
        execute_job_in_process(pooled, pool_limits={"db": 0})
    with pytest.raises(ValueError, match="max_concurrent must be >= 0"):
        materialize([loaded], max_concurrent=-1)
