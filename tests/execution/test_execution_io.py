"""IO managers: memory and pickled files, asset values, re-execution from a parent run."""

from __future__ import annotations

import pickle
import threading
from typing import TYPE_CHECKING

import pytest

from runtime.execution.io_manager import (
    FilesystemIOManager,
    InMemoryIOManager,
    OutputNotFoundError,
    WriteBehindIOManager,
)
from runtime.protocol.messages import AssetMaterializationPayload, EnginePayload
from tests.execution.graph_builders import make_job, make_op, run_job, step

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.definitions.graph import JobDefinition

pytestmark = pytest.mark.anyio


async def numbers() -> list[int]:
    return [1, 2, 3]


def doubled(numbers: list[int]) -> list[int]:
    return [n * 2 for n in numbers]


async def summed(doubled: list[int]) -> int:
    return sum(doubled)


def asset_job() -> JobDefinition:
    return make_job(
        "assets",
        step("numbers", make_op(numbers, asset_key="numbers")),
        step("doubled", make_op(doubled, asset_key="doubled"), numbers="numbers"),
        step("summed", make_op(summed, asset_key="summed"), doubled="doubled"),
    )


async def test_filesystem_layout_and_asset_values(tmp_path: Path) -> None:
    io = FilesystemIOManager(tmp_path, "run-a")
    outcome, events = await run_job(asset_job(), run_id="run-a", io_manager=io)
    assert outcome.status == "SUCCESS"
    # A fresh manager over the same directory reads what the run stored.
    reread = FilesystemIOManager(tmp_path, "run-a")
    assert reread.load("doubled", "result") == [2, 4, 6]
    assert (tmp_path / "run-a" / "outputs.log").is_file()
    assert pickle.loads((tmp_path / "assets" / "summed.pickle").read_bytes()) == 12
    assert io.load_asset("numbers") == [1, 2, 3]
    materialized = [e.payload for e in events if e.event_type == "ASSET_MATERIALIZATION"]
    assert materialized == [
        AssetMaterializationPayload(asset_key=k) for k in ("numbers", "doubled", "summed")
    ]
    assert not temporary_files(tmp_path)


def temporary_files(directory: Path) -> list[Path]:
    return list(directory.rglob("*.tmp"))


async def test_unselected_upstream_asset_is_loaded_from_its_latest_value(tmp_path: Path) -> None:
    first = FilesystemIOManager(tmp_path, "run-1")
    await run_job(asset_job(), run_id="run-1", io_manager=first)
    only_summed = make_job(
        "partial",
        step("summed", make_op(summed, asset_key="summed"), external={"doubled": "doubled"}),
    )
    second = FilesystemIOManager(tmp_path, "run-2")
    outcome, _ = await run_job(only_summed, run_id="run-2", io_manager=second)
    assert outcome.status == "SUCCESS"
    assert second.load("summed", "result") == 12


async def test_missing_asset_value_fails_the_step_naming_the_asset() -> None:
    job = make_job(
        "partial",
        step("summed", make_op(summed, asset_key="summed"), external={"doubled": "doubled"}),
    )
    outcome, _ = await run_job(job)
    error = outcome.steps["summed"].error
    assert error is not None and "Asset 'doubled'" in error.message


async def test_re_execution_from_failure_reuses_the_parent_outputs(tmp_path: Path) -> None:
    calls: list[str] = []
    broken = True

    def source() -> int:
        calls.append("source")
        return 10

    def fragile(x: int) -> int:
        calls.append("fragile")
        if broken:
            raise RuntimeError("flaky upstream")
        return x + 1

    async def final(y: int) -> int:
        calls.append("final")
        return y * 2

    job = make_job(
        "rerun",
        step("source", source),
        step("fragile", fragile, x="source"),
        step("final", final, y="fragile"),
    )
    parent_io = FilesystemIOManager(tmp_path, "parent")
    parent, _ = await run_job(job, run_id="parent", io_manager=parent_io)
    assert parent.status == "FAILURE"
    assert calls == ["source", "fragile"]

    broken = False
    calls.clear()
    reused = [k for k, r in parent.steps.items() if r.status == "SUCCESS"]
    child_io = FilesystemIOManager(tmp_path, "child", parent_run_id="parent")
    child, events = await run_job(job, run_id="child", io_manager=child_io, reused_steps=reused)
    assert child.status == "SUCCESS"
    assert calls == ["fragile", "final"]
    assert list(child.steps) == ["fragile", "final"]
    assert child_io.load("final", "result") == 22
    assert all(e.step_key != "source" for e in events)
    # The reused output now lives in the child's log too, for a grandchild run.
    assert FilesystemIOManager(tmp_path, "child").load("source", "result") == 10
    grandchild_io = FilesystemIOManager(tmp_path, "grandchild", parent_run_id="child")
    assert grandchild_io.load("source", "result") == 10


def test_missing_outputs_raise_output_not_found(tmp_path: Path) -> None:
    io = FilesystemIOManager(tmp_path, "r", parent_run_id="p")
    with pytest.raises(
        OutputNotFoundError, match="No stored output 'result' of step 'x'.*parent run 'p'"
    ):
        io.load("x", "result")
    with pytest.raises(OutputNotFoundError, match="Asset 'a/b' was never materialized"):
        io.load_asset("a/b")
    memory = InMemoryIOManager(assets={"seeded": 1})
    assert memory.load_asset("seeded") == 1
    with pytest.raises(OutputNotFoundError):
        memory.load("x", "result")
    with pytest.raises(LookupError):
        memory.load_asset("nope")


def test_odd_keys_stay_inside_the_base_directory(tmp_path: Path) -> None:
    io = FilesystemIOManager(tmp_path / "base", "r")
    io.store("..", "../result", 1, asset_key="../../escape")
    io.flush()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert (tmp_path / "base") in path.parents
    assert io.load("..", "../result") == 1
    assert io.load_asset("../../escape") == 1


async def test_write_behind_passes_values_in_memory_and_persists_them_before_the_end(
    tmp_path: Path,
) -> None:
    received: list[list[int]] = []

    def mutate(numbers: list[int]) -> int:
        received.append(numbers)
        # In memory the downstream gets the very object; the file keeps what was stored.
        numbers.append(99)
        return len(numbers)

    job = make_job(
        "wb",
        step("numbers", make_op(numbers, asset_key="numbers")),
        step("mutate", mutate, numbers="numbers"),
    )
    io = WriteBehindIOManager(FilesystemIOManager(tmp_path, "run-wb"))
    outcome, events = await run_job(job, run_id="run-wb", io_manager=io)
    assert outcome.status == "SUCCESS"
    assert received == [[1, 2, 3, 99]]
    stored = FilesystemIOManager(tmp_path, "run-wb")
    assert stored.load("numbers", "result") == [1, 2, 3]
    assert stored.load("mutate", "result") == 4
    assert pickle.loads((tmp_path / "assets" / "numbers.pickle").read_bytes()) == [1, 2, 3]
    assert not [e for e in events if e.event_type == "ENGINE_EVENT"]

    # A re-execution reads the reused output from the parent's files.
    child = WriteBehindIOManager(FilesystemIOManager(tmp_path, "child", parent_run_id="run-wb"))
    outcome, _ = await run_job(job, run_id="child", io_manager=child, reused_steps=["numbers"])
    assert outcome.status == "SUCCESS"
    assert child.load("mutate", "result") == 4


async def test_write_failures_are_reported_before_the_run_ends(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    io = WriteBehindIOManager(FilesystemIOManager(blocker, "r"))
    outcome, events = await run_job(make_job("j", step("numbers", numbers)), io_manager=io)
    # The step itself worked; the engine says what could not be kept.
    assert outcome.status == "SUCCESS"
    engine = [e.payload for e in events if e.event_type == "ENGINE_EVENT"]
    assert len(engine) == 1
    assert isinstance(engine[0], EnginePayload)
    assert "Output 'result' of step 'numbers' could not be written" in engine[0].message
    assert events[-1].event_type == "RUN_SUCCESS"


class HoldsALock:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = 7


async def test_an_output_that_cannot_be_pickled_still_passes_in_memory(tmp_path: Path) -> None:
    def guarded() -> HoldsALock:
        return HoldsALock()

    def read(guarded: HoldsALock) -> int:
        return guarded.value

    job = make_job("locked", step("guarded", guarded), step("read", read, guarded="guarded"))
    io = WriteBehindIOManager(FilesystemIOManager(tmp_path, "run-lock"))
    outcome, events = await run_job(job, run_id="run-lock", io_manager=io)
    # Same as with execute_in_process: the value travels in memory, the step succeeds.
    assert outcome.status == "SUCCESS", outcome
    assert io.load("read", "result") == 7
    engine = [e for e in events if e.event_type == "ENGINE_EVENT"]
    assert len(engine) == 1
    assert isinstance(engine[0].payload, EnginePayload)
    message = engine[0].payload.message
    assert message.startswith(
        "Output 'result' of step 'guarded' was passed on in memory but could not be saved "
        "for re-execution: TypeError: cannot pickle"
    ), message
    assert "lock" in message
    assert events[-1].event_type == "RUN_SUCCESS"
    # The picklable output was still saved; the other one was not.
    stored = FilesystemIOManager(tmp_path, "run-lock")
    assert stored.load("read", "result") == 7
    with pytest.raises(OutputNotFoundError, match="step 'guarded'"):
        stored.load("guarded", "result")


def test_a_torn_last_record_is_ignored_and_later_records_win(tmp_path: Path) -> None:
    io = FilesystemIOManager(tmp_path, "torn")
    io.store("a", "result", 1)
    io.store("b", "result", [2])
    io.store("a", "result", 3)
    io.flush()
    log = tmp_path / "torn" / "outputs.log"
    whole = log.read_bytes()
    # A process killed in the middle of writing one more record: its header
    # and the start of its key made it to disk, the rest did not.
    log.write_bytes(whole + whole[:15])
    reread = FilesystemIOManager(tmp_path, "torn")
    assert reread.load("a", "result") == 3
    assert reread.load("b", "result") == [2]
    with pytest.raises(OutputNotFoundError, match="step 'c'"):
        reread.load("c", "result")
