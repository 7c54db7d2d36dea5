"""materialize() and job.execute_in_process(): users' own tests, with the real decorators."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import msgspec
import pytest

from runtime import StepContext, asset, job, materialize, op
from runtime.errors import DefinitionError, RunConfigError, StepSelectionError
from runtime.execution.in_process import execute_job_in_process
from runtime.execution.io_manager import InMemoryIOManager
from runtime.protocol.run_result import RunResult
from runtime.protocol.run_status import RunStatus, StepStatus


class ScaleConfig(msgspec.Struct):
    factor: int
    label: str = "scaled"


@asset
async def raw_orders() -> list[dict[str, int]]:
    return [{"id": 1, "amount": 5}, {"id": 2, "amount": 7}]


@asset
def order_count(raw_orders: list[dict[str, int]]) -> int:
    return len(raw_orders)


@asset
def revenue(raw_orders: list[dict[str, int]], config: ScaleConfig) -> int:
    return sum(o["amount"] for o in raw_orders) * config.factor


@op
def extract() -> int:
    return 3


@op
async def transform(n: int, context: StepContext) -> int:
    context.log.info("transforming %d", n)
    return n * 2


@op
def load(n: int) -> str:
    if n < 0:
        raise ArithmeticError("negative load")
    return f"loaded {n}"


@job
def etl() -> None:
    load(transform(extract()))


@op
def negative() -> int:
    return -1


@job
def broken_etl() -> None:
    load(negative())


def test_materialize_assets_and_read_outputs() -> None:
    result = materialize(
        [raw_orders, order_count, revenue],
        run_config={"ops": {"revenue": {"config": {"factor": 10}}}},
    )
    assert result.success and result.status == "SUCCESS"
    assert result.output_for("order_count") == 2
    assert result.asset_value("revenue") == 120
    assert set(result.step_results) == {"raw_orders", "order_count", "revenue"}
    materialized = [
        str(e.step_key) for e in result.all_events if e.event_type == "ASSET_MATERIALIZATION"
    ]
    assert sorted(materialized) == ["order_count", "raw_orders", "revenue"]
    assert [e.sequence for e in result.all_events] == list(range(1, len(result.all_events) + 1))


def test_materialize_a_selection_loads_unselected_upstreams_from_the_io_manager() -> None:
    io = InMemoryIOManager(assets={"raw_orders": [{"id": 9, "amount": 1}] * 4})
    result = materialize(
        [raw_orders, order_count, revenue], selection=["order_count"], io_manager=io
    )
    assert result.output_for("order_count") == 4
    assert list(result.step_results) == ["order_count"]


def test_materialize_rejects_bad_config_and_unknown_selection() -> None:
    with pytest.raises(RunConfigError, match=r"\$\.ops\.revenue\.config"):
        materialize(
            [raw_orders, revenue], run_config={"ops": {"revenue": {"config": {"factor": "x"}}}}
        )
    with pytest.raises(DefinitionError, match="'nope'"):
        materialize([raw_orders], selection=["nope"])


def test_execute_in_process_runs_a_composed_job() -> None:
    result = etl.execute_in_process()
    assert result.success
    assert result.output_for("load") == "loaded 6"
    logs = [e for e in result.events_for("transform") if e.event_type == "LOG"]
    assert len(logs) == 1


def test_the_result_is_a_run_result() -> None:
    result = etl.execute_in_process()
    assert isinstance(result, RunResult)
    assert result.status is RunStatus.SUCCESS
    assert result.step_results is result.steps
    assert [s.status for s in result.steps.values()] == [StepStatus.SUCCESS] * 3
    assert result.event_count == len(result.all_events)
    assert result.start_time == result.all_events[0].timestamp
    assert result.end_time == result.all_events[-1].timestamp
    assert result.duration is not None and result.duration >= 0


def test_raise_on_error_reraises_the_step_exception_and_can_be_turned_off() -> None:
    with pytest.raises(ArithmeticError, match="negative load"):
        broken_etl.execute_in_process()
    result = broken_etl.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.failed_steps == ["load"]
    assert isinstance(result.step_exceptions["load"], ArithmeticError)
    assert result.failure_message == "Steps failed: load."
    with pytest.raises(Exception, match="has no output: it ended FAILURE"):
        result.output_for("load")
    with pytest.raises(Exception, match="ran no step 'zzz'"):
        result.output_for("zzz")


def test_step_selection_errors_name_the_job() -> None:
    with pytest.raises(StepSelectionError, match="'etl'"):
        execute_job_in_process(etl, step_selection=["nope"])


@pytest.mark.anyio
async def test_execute_in_process_works_inside_a_running_event_loop() -> None:
    result = etl.execute_in_process(run_id="inside-loop")
    assert result.run_id == "inside-loop"
    assert result.output_for("load") == "loaded 6"


def test_execute_in_process_needs_only_the_definitions_imported() -> None:
    # The definitions import nothing of the engine; the facade hands them the
    # runner, and the engine is imported by the first in-process run.
    code = textwrap.dedent(
        """
        import sys
        from runtime.definitions.job import job
        from runtime.definitions.op import op

        @op
        def one() -> int:
            return 1

        @job
        def tiny():
            one()

        before = "runtime.execution.scheduler" in sys.modules
        result = tiny.execute_in_process()
        print(before, result.status, result.output_for("one"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "SUCCESS", "1"]
