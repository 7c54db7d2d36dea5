"""Definitions over assets: graph checks, the implicit asset job, define_asset_job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime import Definitions, ScheduleDefinition, asset, define_asset_job, job, op, sensor
from runtime.definitions.graph import ASSET_JOB_NAME, StepInput
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from runtime.definitions.asset import AssetsDefinition


@asset
def raw() -> list[int]:
    return [1, 2, 3]


@asset
def cleaned(raw: list[int]) -> list[int]:
    return raw


@asset(deps=[raw])
def audit() -> None:
    return None


@asset
def report(cleaned: list[int], raw: list[int]) -> int:
    return len(cleaned) + len(raw)


ALL = [report, audit, cleaned, raw]


@op
def ping() -> int:
    return 1


@job
def ops_job() -> None:
    ping()


def test_implicit_asset_job_covers_every_asset_in_dependency_order() -> None:
    defs = Definitions(assets=ALL)
    asset_job = defs.get_job(ASSET_JOB_NAME)
    assert asset_job.is_asset_job
    order = list(asset_job.steps)
    assert sorted(order) == ["audit", "cleaned", "raw", "report"]
    assert order.index("raw") < order.index("cleaned") < order.index("report")
    assert order.index("raw") < order.index("audit")
    assert asset_job.steps["report"].inputs == {
        "cleaned": StepInput("cleaned", "cleaned"),
        "raw": StepInput("raw", "raw"),
    }
    assert asset_job.steps["audit"].after == ("raw",)
    assert asset_job.steps["audit"].inputs == {}
    assert asset_job.steps["report"].external_inputs == {}
    assert defs.job_names() == [ASSET_JOB_NAME]


def test_no_assets_no_implicit_job() -> None:
    defs = Definitions(jobs=[ops_job])
    assert defs.job_names() == ["ops_job"]


def test_asset_job_selection_keeps_unselected_upstreams_external() -> None:
    partial = define_asset_job("partial", selection=[report, "audit"], tags={"k": "v"})
    defs = Definitions(assets=ALL, jobs=[partial])
    built = defs.get_job("partial")
    assert built.is_asset_job
    assert built.tags == {"k": "v"}
    assert list(built.steps) == ["audit", "report"] or list(built.steps) == ["report", "audit"]
    report_step = built.steps["report"]
    assert report_step.inputs == {}
    assert report_step.external_inputs == {"cleaned": "cleaned", "raw": "raw"}
    # An unselected ordering-only dep is simply not waited for.
    assert built.steps["audit"].after == ()
    assert report_step.upstream_keys == ()


def test_asset_job_mixed_selection() -> None:
    middle = define_asset_job("middle", selection=["cleaned", "report"])
    built = Definitions(assets=ALL, jobs=[middle]).get_job("middle")
    assert list(built.steps) == ["cleaned", "report"]
    assert built.steps["report"].inputs == {"cleaned": StepInput("cleaned", "cleaned")}
    assert built.steps["report"].external_inputs == {"raw": "raw"}
    assert built.steps["cleaned"].external_inputs == {"raw": "raw"}


@pytest.mark.parametrize("selection", [None, "*"])
def test_asset_job_select_all(selection: str | None) -> None:
    everything = define_asset_job("everything", selection=selection, description="all of it")
    built = Definitions(assets=ALL, jobs=[everything]).get_job("everything")
    assert set(built.steps) == {"raw", "cleaned", "audit", "report"}
    assert built.description == "all of it"


def test_asset_job_unknown_key_names_job_key_and_suggestion() -> None:
    typo = define_asset_job("typo", selection=["cleand"])
    with pytest.raises(DefinitionError) as info:
        Definitions(assets=ALL, jobs=[typo])
    message = str(info.value)
    assert "'typo'" in message and "'cleand'" in message and "did you mean 'cleaned'" in message


def test_asset_job_bad_selection_entries() -> None:
    with pytest.raises(DefinitionError, match="selects no assets"):
        define_asset_job("nothing", selection=[])
    with pytest.raises(DefinitionError, match="has selection entry 3"):
        define_asset_job("numbers", selection=[3])  # type: ignore[list-item]


def test_unknown_dependency_names_asset_key_and_closest() -> None:
    @asset
    def orders_summary(raw_orders: list[int]) -> int:
        return 0

    @asset
    def raw_order() -> list[int]:
        return []

    with pytest.raises(DefinitionError) as info:
        Definitions(assets=[raw_order, orders_summary])
    message = str(info.value)
    assert "asset 'orders_summary' depends on 'raw_orders'" in message
    assert "did you mean 'raw_order'" in message


def test_unknown_ordering_dependency() -> None:
    @asset(deps=["nowhere"])
    def lonely() -> None:
        return None

    with pytest.raises(DefinitionError, match="asset 'lonely' depends on 'nowhere'"):
        Definitions(assets=[lonely])


def test_cycle_is_named_by_its_path() -> None:
    @asset(name="a")
    def make_a(c: int) -> int:
        return c

    @asset(name="b")
    def make_b(a: int) -> int:
        return a

    @asset(name="c", deps=["b"])
    def make_c() -> int:
        return 1

    with pytest.raises(DefinitionError) as info:
        Definitions(assets=[make_a, make_b, make_c])
    message = str(info.value)
    assert "form a cycle" in message
    # Any rotation of the same cycle, in the direction data flows.
    rotations = ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]
    assert any(r in message for r in rotations), message


def test_self_dependency_is_a_cycle() -> None:
    @asset
    def itself(itself: int) -> int:
        return itself

    with pytest.raises(DefinitionError, match="itself -> itself"):
        Definitions(assets=[itself])


def test_long_chain_does_not_hit_recursion_limit() -> None:
    chain: list[AssetsDefinition] = []
    for i in range(5000):
        namespace: dict[str, object] = {}
        params = f"a{i - 1}" if i else ""
        exec(f"def a{i}({params}): return 1", namespace)
        chain.append(asset(namespace[f"a{i}"]))  # type: ignore[call-overload]
    defs = Definitions(assets=list(reversed(chain)))
    assert list(defs.get_job(ASSET_JOB_NAME).steps)[:3] == ["a0", "a1", "a2"]


def test_duplicate_asset_keys() -> None:
    @asset(name="raw")
    def other_raw() -> list[int]:
        return []

    with pytest.raises(DefinitionError, match="two different assets with the key 'raw'"):
        Definitions(assets=[raw, other_raw])
    # The same object twice is harmless.
    assert len(Definitions(assets=[raw, raw]).assets) == 1


def test_duplicate_job_names() -> None:
    @job(name="ops_job")
    def again() -> None:
        ping()

    with pytest.raises(DefinitionError, match="two different jobs named 'ops_job'"):
        Definitions(jobs=[ops_job, again])
    with pytest.raises(DefinitionError, match="two different jobs named 'ops_job'"):
        Definitions(assets=ALL, jobs=[ops_job, define_asset_job("ops_job")])


def test_reserved_asset_job_name() -> None:
    with pytest.raises(DefinitionError, match="reserved"):
        Definitions(assets=ALL, jobs=[define_asset_job(ASSET_JOB_NAME)])


def test_duplicate_schedule_and_sensor_names() -> None:
    first = ScheduleDefinition(name="nightly", cron_schedule="0 0 * * *", job=ops_job)
    second = ScheduleDefinition(name="nightly", cron_schedule="0 1 * * *", job=ops_job)
    with pytest.raises(DefinitionError, match="two different schedules named 'nightly'"):
        Definitions(jobs=[ops_job], schedules=[first, second])

    def poll(context: object) -> None:
        return None

    s1 = sensor(job=ops_job, name="watch")(poll)
    s2 = sensor(job=ops_job, name="watch")(poll)
    with pytest.raises(DefinitionError, match="two different sensors named 'watch'"):
        Definitions(jobs=[ops_job], sensors=[s1, s2])
    clash = sensor(job=ops_job, name="nightly")(poll)
    with pytest.raises(DefinitionError, match="a schedule and a sensor both named 'nightly'"):
        Definitions(jobs=[ops_job], schedules=[first], sensors=[clash])


def test_schedule_target_job_is_added_or_checked() -> None:
    nightly = ScheduleDefinition(name="nightly", cron_schedule="0 0 * * *", job=ops_job)
    defs = Definitions(schedules=[nightly])
    assert defs.job_names() == ["ops_job"]
    assert defs.get_job("ops_job") is ops_job

    by_name = ScheduleDefinition(name="by_name", cron_schedule="0 0 * * *", job_name="opz_job")
    with pytest.raises(DefinitionError) as info:
        Definitions(jobs=[ops_job], schedules=[by_name])
    message = str(info.value)
    assert "schedule 'by_name'" in message and "'opz_job'" in message
    assert "did you mean 'ops_job'" in message

    @job(name="ops_job")
    def impostor() -> None:
        ping()

    with pytest.raises(DefinitionError, match="another job with that name"):
        Definitions(jobs=[impostor], schedules=[nightly])


def test_wrong_types_in_definitions() -> None:
    with pytest.raises(DefinitionError, match=r"Definitions\(assets=...\) got <op 'ping'>"):
        Definitions(assets=[ping])  # type: ignore[list-item]
    with pytest.raises(DefinitionError, match="pass a list of"):
        Definitions(assets=raw)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"Definitions\(jobs=...\)"):
        Definitions(jobs=[raw])  # type: ignore[list-item]
