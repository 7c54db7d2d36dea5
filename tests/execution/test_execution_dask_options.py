"""The dask executor's options and the run config's `execution:` choice: one sentence per mistake."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import pytest

from runtime.errors import RunConfigError
from runtime.execution.dask.options import DEFAULT_INLINE_BYTES, parse_options
from runtime.execution.executors import executor_from_run_config, resolve_executor
from runtime.execution.fsspec_io import FsspecIOManager
from runtime.execution.io_manager import InMemoryIOManager
from runtime.execution.job_run import JobRunRequest, run_io_manager, validate_run
from tests.execution import dask_ops
from tests.execution.graph_builders import make_job, step

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.definitions.repository import RepositoryDefinition


def refusal(options: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as raised:
        resolve_executor("dask", options, run_id="r1")
    return str(raised.value)


def test_options_are_checked_naming_the_option() -> None:
    assert parse_options({}).inline_bytes == DEFAULT_INLINE_BYTES and parse_options({}).local
    assert refusal({"n_worker": 2}) == (
        "Executor 'dask' of run 'r1': unknown option 'n_worker' (did you mean 'n_workers'?); "
        "the options are: scheduler_address, n_workers, threads_per_worker, processes, "
        "connect_timeout, io_url, io_options, inline_bytes."
    )
    assert refusal({"n_workers": 0}) == (
        "Executor 'dask' of run 'r1': option 'n_workers': Expected `int` >= 1."
    )
    assert refusal({"scheduler_address": "tcp://h:8786", "n_workers": 2}) == (
        "Executor 'dask' of run 'r1': option 'n_workers' sizes the LocalCluster started when "
        "there is no scheduler_address; it does not apply to the scheduler at tcp://h:8786."
    )
    assert refusal({"scheduler_address": "h:8786"}) == (
        "Executor 'dask' of run 'r1': option 'scheduler_address' must be an address such as "
        "tcp://host:8786, got 'h:8786'."
    )
    assert refusal({"io_url": "nosuchfs://bucket/x"}).startswith(
        "Executor 'dask' of run 'r1': option 'io_url' 'nosuchfs://bucket/x' cannot be opened: "
    )


def test_without_dask_installed_the_check_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "distributed" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert refusal({"scheduler_address": "tcp://h:8786"}) == (
        "Executor 'dask' of run 'r1': it needs Dask (dask.distributed and fsspec), which is not "
        "installed in the code location's environment: pip install 'runtime[dask]'."
    )


def test_importing_runtime_s_executors_imports_no_dask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, runtime.execution.executors, runtime.execution.runners, "
        "runtime.execution.dask.options as o; o.check_options({}); "
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_run_config_chooses_the_executor_as_dagster_does() -> None:
    base: dict[str, Any] = {"scheduler_address": "tcp://h:1"}
    assert executor_from_run_config({}, "dask", base, job_name="j") == ("dask", base)
    assert executor_from_run_config(
        {"execution": {"dask": {"n_workers": 2}}}, "in_process", {}, job_name="j"
    ) == ("dask", {"n_workers": 2})
    # Options for the executor already chosen are laid over its own.
    assert executor_from_run_config(
        {"execution": {"config": {"dask": {"inline_bytes": 0}}}}, "dask", base, job_name="j"
    ) == ("dask", {**base, "inline_bytes": 0})
    assert executor_from_run_config(
        {"execution": {"in_process": None}}, "dask", base, job_name="j"
    ) == ("in_process", {})


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        (
            {"dsak": {}},
            "Run config for job 'j': Unknown executor 'dsak' at `$.execution`; the registered "
            "executors are: dask, in_process, multiprocess. Did you mean 'dask'?",
        ),
        (
            {},
            "Run config for job 'j': `$.execution` names no executor; it names one executor "
            "with its options, e.g. `$.execution: {dask: {scheduler_address: "
            "tcp://host:8786}}` (executors: dask, in_process, multiprocess).",
        ),
        (
            {"config": {"dask": {}}, "dask": {}},
            "Run config for job 'j': `$.execution` has 'config' beside 'dask'; put the executor "
            "under one of them.",
        ),
        (
            {"config": {"dask": 3}},
            "Run config for job 'j': `$.execution.config.dask` holds the options of executor "
            "'dask': it must be a mapping, got int.",
        ),
    ],
)
def test_a_bad_execution_section_names_its_path(execution: Any, message: str) -> None:
    with pytest.raises(RunConfigError) as raised:
        executor_from_run_config({"execution": execution}, "in_process", {}, job_name="j")
    assert str(raised.value) == message


def _repository() -> RepositoryDefinition:
    from runtime.definitions.repository import RepositoryDefinition

    job = make_job("j", step("seed", dask_ops.seed))
    return RepositoryDefinition(name="r", jobs={"j": job})


def test_validation_blames_the_run_config_for_its_own_executor_choice() -> None:
    repository = _repository()
    assert validate_run(repository, "j", {"execution": {"dask": {}}}, executor="in_process") is None
    problem = validate_run(
        repository, "j", {"execution": {"dask": {"n_workers": 0}}}, executor="in_process"
    )
    assert problem is not None and problem.kind == "run_config"
    assert str(problem.error) == (
        "Run config for job 'j': `$.execution`: Executor 'dask' of run '<new run of j>': "
        "option 'n_workers': Expected `int` >= 1."
    )
    # Options from instance.yaml are the instance's problem.
    problem = validate_run(repository, "j", {}, executor="dask", executor_config={"n_workers": 0})
    assert problem is not None and problem.kind == "executor"


def test_a_launched_dask_run_keeps_its_outputs_where_the_workers_reach_them(
    tmp_path: Path,
) -> None:
    request = JobRunRequest(
        run_id="r2", job_name="j", storage_dir=str(tmp_path), executor="dask", parent_run_id="r1"
    )
    io = run_io_manager(request)
    assert isinstance(io, FsspecIOManager)
    assert (io.url, io.run_id, io.location.parent_run_id) == (str(tmp_path), "r2", "r1")
    chosen = run_io_manager(
        JobRunRequest(
            run_id="r3",
            job_name="j",
            storage_dir=str(tmp_path),
            executor="dask",
            executor_config={"io_url": "memory://elsewhere"},
        )
    )
    assert isinstance(chosen, FsspecIOManager) and chosen.url == "memory://elsewhere"
    assert isinstance(
        run_io_manager(JobRunRequest(run_id="r4", job_name="j", executor="dask")),
        InMemoryIOManager,
    )
