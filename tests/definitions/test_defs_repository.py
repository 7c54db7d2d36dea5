"""@repository (list, dict, lazy entries) and the read interface shared with Definitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from runtime import (
    Definitions,
    RepositoryDefinition,
    ScheduleDefinition,
    asset,
    define_asset_job,
    job,
    op,
    repository,
    schedule,
    sensor,
)
from runtime.definitions.definitions import DEFINITIONS_REPOSITORY_NAME
from runtime.definitions.graph import ASSET_JOB_NAME, JobDefinition
from runtime.errors import DefinitionError, UnknownDefinitionError, UnknownJobError

if TYPE_CHECKING:
    from collections.abc import Callable


@op
def step() -> int:
    return 1


@job
def alpha() -> None:
    step()


@job
def beta() -> None:
    step()


@asset
def source() -> int:
    return 1


@asset
def derived(source: int) -> int:
    return source + 1


def _poll(context: Any) -> None:
    return None


every_hour = ScheduleDefinition(name="every_hour", cron_schedule="0 * * * *", job=alpha)
watcher = sensor(job=beta, name="watcher")(_poll)


def _read_interface(repo: RepositoryDefinition | Definitions) -> dict[str, Any]:
    return {
        "jobs": repo.job_names(),
        "schedules": repo.schedule_names(),
        "sensors": repo.sensor_names(),
        "assets": [a.key for a in repo.assets],
    }


def test_list_repository() -> None:
    @repository
    def team() -> list[object]:
        return [alpha, every_hour, watcher, source, derived]

    assert isinstance(team, RepositoryDefinition)
    assert team.name == "team"
    # beta joins because the sensor targets it.
    assert _read_interface(team) == {
        "jobs": ["alpha", "beta", ASSET_JOB_NAME],
        "schedules": ["every_hour"],
        "sensors": ["watcher"],
        "assets": ["source", "derived"],
    }
    assert team.get_job("alpha") is alpha
    assert list(team.get_job(ASSET_JOB_NAME).steps) == ["source", "derived"]
    assert team.get_schedule("every_hour") is every_hour
    assert team.get_sensor("watcher") is watcher
    assert [j.name for j in team.get_all_jobs()] == ["alpha", "beta", ASSET_JOB_NAME]


def test_named_repository_with_asset_job() -> None:
    @repository(name="renamed", description="d")
    def anything() -> list[object]:
        return [source, derived, define_asset_job("only_derived", [derived])]

    assert anything.name == "renamed"
    assert anything.description == "d"
    built = anything.get_job("only_derived")
    assert built.steps["derived"].external_inputs == {"source": "source"}


def test_dict_repository_builds_lazily_and_caches() -> None:
    calls: list[str] = []

    def build_beta() -> JobDefinition:
        calls.append("beta")
        return beta

    def exploding() -> JobDefinition:
        raise RuntimeError("not now")

    def build_schedule() -> ScheduleDefinition:
        calls.append("schedule")
        return ScheduleDefinition(name="later", cron_schedule="@daily", job_name="beta")

    @repository
    def lazy() -> dict[str, Any]:
        return {
            "jobs": {"alpha": alpha, "beta": build_beta, "broken": exploding},
            "schedules": {"later": build_schedule},
            "sensors": {"lazy_sensor": lambda: sensor(job_name="alpha", name="lazy_sensor")(_poll)},
        }

    # Listing names builds nothing, and the raising entry is never called.
    assert lazy.job_names() == ["alpha", "beta", "broken"]
    assert lazy.schedule_names() == ["later"]
    assert lazy.sensor_names() == ["lazy_sensor"]
    assert calls == []
    assert lazy.get_job("beta") is beta
    assert lazy.get_job("beta") is beta
    assert calls == ["beta"]
    assert lazy.get_schedule("later").job_name == "beta"
    assert lazy.get_sensor("lazy_sensor").job_name == "alpha"
    assert calls == ["beta", "schedule"]

    with pytest.raises(DefinitionError, match="building job 'broken' raised RuntimeError: not now"):
        lazy.get_job("broken")


def test_lazy_entry_with_other_name_names_both_and_repository() -> None:
    @repository
    def mismatched() -> dict[str, Any]:
        return {"jobs": {"etl": lambda: alpha}}

    with pytest.raises(DefinitionError) as info:
        mismatched.get_job("etl")
    message = str(info.value)
    assert "'mismatched'" in message and "'etl'" in message and "'alpha'" in message


def test_eager_entry_with_other_name_fails_at_definition() -> None:
    with pytest.raises(DefinitionError, match="key 'etl' is named 'alpha'"):

        @repository
        def eager_mismatch() -> dict[str, Any]:
            return {"jobs": {"etl": alpha}}


def test_lazy_entry_building_something_else() -> None:
    @repository
    def odd() -> dict[str, Any]:
        return {"jobs": {"x": lambda: 42}, "schedules": {"s": lambda: alpha}}

    with pytest.raises(DefinitionError, match="built 42, not a job"):
        odd.get_job("x")
    with pytest.raises(DefinitionError, match="not a schedule"):
        odd.get_schedule("s")


def test_lazy_asset_job_resolves_against_nothing() -> None:
    @repository
    def no_assets() -> dict[str, Any]:
        return {"jobs": {"assets": lambda: define_asset_job("assets", ["source"])}}

    with pytest.raises(DefinitionError, match="selects 'source', which is not an asset"):
        no_assets.get_job("assets")


def test_lazy_schedule_targeting_unknown_job() -> None:
    @repository
    def dangling() -> dict[str, Any]:
        return {
            "jobs": {"alpha": alpha},
            "schedules": {
                "s": lambda: ScheduleDefinition(name="s", cron_schedule="@daily", job_name="gamma")
            },
        }

    with pytest.raises(DefinitionError, match="targets job 'gamma'"):
        dangling.get_schedule("s")


def test_unknown_names_list_what_exists() -> None:
    @repository
    def small() -> list[object]:
        return [alpha, beta, every_hour]

    with pytest.raises(UnknownJobError) as info:
        small.get_job("alpah")
    message = str(info.value)
    assert "'alpah'" in message and "alpha, beta" in message and "did you mean 'alpha'" in message
    with pytest.raises(UnknownDefinitionError, match="its schedules are: every_hour"):
        small.get_schedule("nope")
    with pytest.raises(UnknownDefinitionError, match="its sensors are: none"):
        small.get_sensor("nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: 3, "returned 3; return a list"),
        (lambda: [3], "got 3; expected assets, jobs, schedules or sensors"),
        (lambda: {"assets": {}}, "the key 'assets'"),
        (lambda: {"jobs": [alpha]}, r"'jobs' must map names .*, got \[<job 'alpha'>\]"),
        (lambda: {"jobs": {"x": 3}}, "neither a job nor a zero-argument function"),
    ],
)
def test_bad_repository_content(content: Callable[[], object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):

        @repository(name="bad")
        def make() -> object:
            return content()

        make.get_all_jobs()


def test_dict_eager_schedule_brings_its_job() -> None:
    @repository
    def brings() -> dict[str, Any]:
        return {"schedules": {"every_hour": every_hour}}

    assert brings.job_names() == ["alpha"]


def test_decorated_schedule_in_list() -> None:
    @schedule("*/5 * * * *", job=alpha)
    def five(context: Any) -> dict[str, Any]:
        return {}

    @repository
    def with_schedule() -> list[object]:
        return [five]

    assert with_schedule.job_names() == ["alpha"]


def test_definitions_read_interface_matches_repository() -> None:
    defs = Definitions(
        assets=[source, derived],
        jobs=[alpha],
        schedules=[every_hour],
        sensors=[watcher],
        resources={"db": "sqlite://"},
    )
    repo = defs.get_repository()
    assert isinstance(repo, RepositoryDefinition)
    assert repo.name == defs.name == DEFINITIONS_REPOSITORY_NAME
    assert _read_interface(defs) == _read_interface(repo)
    assert defs.job_names() == ["alpha", "beta", ASSET_JOB_NAME]
    assert defs.get_job("alpha") is repo.get_job("alpha")
    assert defs.get_schedule("every_hour") is every_hour
    assert defs.get_sensor("watcher") is watcher
    assert defs.resources == {"db": "sqlite://"} == repo.resources
    assert len(defs.get_all_jobs()) == 3
    assert "2 assets, 3 jobs, 1 schedules, 1 sensors" in repr(defs)
    with pytest.raises(UnknownJobError, match="no job named 'zzz'"):
        defs.get_job("zzz")
