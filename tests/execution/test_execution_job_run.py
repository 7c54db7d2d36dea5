"""job_run: a repository's run validated, prepared and executed; a refusal is one RUN_FAILURE."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from runtime import Definitions, job, op, repository
from runtime.errors import DefinitionError, RunConfigError, StepSelectionError, UnknownJobError
from runtime.execution.io_manager import FilesystemIOManager, InMemoryIOManager
from runtime.execution.job_run import (
    JobRunRequest,
    execute_run,
    prepare_run,
    run_io_manager,
    validate_run,
)
from runtime.protocol.messages import RunFailurePayload
from runtime.protocol.run_log import ListSink
from runtime.protocol.run_status import RunStatus, StepStatus

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.definitions.graph import JobDefinition

pytestmark = pytest.mark.anyio


class Times(msgspec.Struct):
    times: int


@op
def base() -> int:
    return 2


@op
def scaled(base: int, config: Times) -> int:
    return base * config.times


@job
def scale() -> None:
    scaled(base())


CONFIG = {"ops": {"scaled": {"config": {"times": 3}}}}
REPOSITORY = Definitions(jobs=[scale]).get_repository()


def _broken() -> JobDefinition:
    raise RuntimeError("the lazy job is broken")


@repository
def lazy() -> dict[str, object]:
    return {"jobs": {"broken": _broken}}


def test_validate_names_each_kind_of_problem() -> None:
    assert validate_run(REPOSITORY, "scale", CONFIG) is None
    cases = [
        ("unknown_job", UnknownJobError, validate_run(REPOSITORY, "nope", {})),
        (
            "run_config",
            RunConfigError,
            validate_run(REPOSITORY, "scale", {"ops": {"scaled": {"config": {}}}}),
        ),
        ("step_selection", StepSelectionError, validate_run(REPOSITORY, "scale", CONFIG, ["x"])),
        ("definition", DefinitionError, validate_run(lazy, "broken", {})),
    ]
    for kind, error_type, problem in cases:
        assert problem is not None, kind
        assert problem.kind == kind
        assert isinstance(problem.error, error_type), problem
    definition_problem = cases[-1][2]
    assert definition_problem is not None
    assert "the lazy job is broken" in str(definition_problem.error)


def test_prepare_chooses_the_io_manager(tmp_path: Path) -> None:
    in_memory = prepare_run(
        REPOSITORY, JobRunRequest(run_id="r1", job_name="scale", run_config=CONFIG)
    )
    assert isinstance(in_memory.io_manager, InMemoryIOManager)
    assert list(in_memory.plan.steps) == ["base", "scaled"]
    stored = run_io_manager(JobRunRequest(run_id="r2", job_name="scale", storage_dir=str(tmp_path)))
    assert not isinstance(stored, InMemoryIOManager)
    assert stored.blocking is False  # memory on the hot path, files behind


async def test_execute_runs_and_keeps_outputs_for_re_execution(tmp_path: Path) -> None:
    sink = ListSink()
    request = JobRunRequest(
        run_id="r1",
        job_name="scale",
        run_config=CONFIG,
        storage_dir=str(tmp_path),
        first_sequence=3,
    )
    result = await execute_run(REPOSITORY, request, sink)
    assert result.status is RunStatus.SUCCESS
    assert {k: s.status for k, s in result.steps.items()} == {
        "base": StepStatus.SUCCESS,
        "scaled": StepStatus.SUCCESS,
    }
    assert sink.events[0].sequence == 3 and sink.events[0].event_type == "RUN_START"
    assert result.event_count == len(sink.events)
    assert FilesystemIOManager(tmp_path, "r1").load("scaled", "result") == 6


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"job_name": "nope"}, "has no job named 'nope'; its jobs are: scale."),
        ({"executor": "gpu"}, "Unknown executor 'gpu' for run 'r'"),
        ({"executor_config": {"x": 1}}, "Executor 'in_process' of run 'r': it takes no options"),
        ({"first_sequence": 0}, "first_sequence must be >= 1, got 0 for run 'r'."),
        ({"reused_steps": ["base"]}, "reuses the outputs of steps base but names no storage_dir"),
        ({"max_concurrent": -1}, "max_concurrent must be >= 0"),
    ],
)
async def test_a_run_that_cannot_start_is_one_run_failure(
    changes: dict[str, object], reason: str
) -> None:
    sink = ListSink()
    fields: dict[str, object] = {"run_id": "r", "job_name": "scale", "run_config": CONFIG}
    fields["first_sequence"] = 4
    fields.update(changes)
    request = JobRunRequest(**fields)  # type: ignore[arg-type]
    result = await execute_run(REPOSITORY, request, sink)
    [event] = sink.events
    assert event.event_type == "RUN_FAILURE"
    # Numbered where the host's log stops (1 when that number itself is refused).
    assert event.sequence == max(request.first_sequence, 1)
    assert isinstance(event.payload, RunFailurePayload)
    assert event.payload.message.startswith(
        f"Run 'r' of job {request.job_name!r} could not start: "
    )
    assert reason in event.payload.message
    assert result.status is RunStatus.FAILURE
    assert result.failure_message == event.payload.message
    assert result.steps == {} and result.event_count == 1
