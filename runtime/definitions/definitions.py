"""Definitions: everything a code location defines, checked as a whole when it is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.definitions.asset import AssetsDefinition
from runtime.definitions.asset_job import AssetJob
from runtime.definitions.graph import JobDefinition
from runtime.definitions.introspect import short_repr
from runtime.definitions.repository import DefinitionSet, RepositoryDefinition
from runtime.definitions.schedule import ScheduleDefinition
from runtime.definitions.sensor import SensorDefinition
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# The repository name a Definitions object presents to the host.
DEFINITIONS_REPOSITORY_NAME = "__repository__"


class Definitions:
    """The assets, jobs, schedules, sensors and resources of one code location.

    Everything is checked now: duplicate names, unknown asset dependencies,
    cycles, asset job selections, and the jobs schedules and sensors target
    (jobs they target as objects are added). All assets together also form the
    job `__ASSET_JOB`. Raises DefinitionError naming what is wrong.
    """

    def __init__(
        self,
        assets: Iterable[AssetsDefinition] | None = None,
        jobs: Iterable[JobDefinition | AssetJob] | None = None,
        schedules: Iterable[ScheduleDefinition] | None = None,
        sensors: Iterable[SensorDefinition] | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        collected = DefinitionSet("Definitions")
        sections: tuple[tuple[str, Iterable[object] | None, tuple[type, ...], str], ...] = (
            ("assets", assets, (AssetsDefinition,), "objects made with @asset"),
            ("jobs", jobs, (JobDefinition, AssetJob), "jobs from @job or define_asset_job"),
            ("schedules", schedules, (ScheduleDefinition,), "schedules"),
            ("sensors", sensors, (SensorDefinition,), "sensors"),
        )
        for section, items, types, expected in sections:
            if isinstance(items, (str, bytes)) or (items is not None and _is_single(items)):
                raise DefinitionError(
                    f"Definitions({section}=...) got {short_repr(items)}; pass a list of {expected}."
                )
            for item in items or ():
                if not isinstance(item, types):
                    raise DefinitionError(
                        f"Definitions({section}=...) got {short_repr(item)}; pass {expected}."
                    )
                collected.add(item)
        collected.add_targets()
        self._repository = RepositoryDefinition(
            DEFINITIONS_REPOSITORY_NAME,
            jobs=collected.jobs,
            schedules=collected.schedules,
            sensors=collected.sensors,
            assets=collected.assets,
            resources=resources,
            where="Definitions",
        )

    def __repr__(self) -> str:
        return (
            f"<Definitions: {len(self.assets)} assets, {len(self.job_names())} jobs, "
            f"{len(self.schedule_names())} schedules, {len(self.sensor_names())} sensors>"
        )

    def get_repository(self) -> RepositoryDefinition:
        """The RepositoryDefinition the code server reads."""
        return self._repository

    # The same read interface as RepositoryDefinition, for convenience.

    @property
    def name(self) -> str:
        return self._repository.name

    @property
    def assets(self) -> list[AssetsDefinition]:
        return self._repository.assets

    @property
    def resources(self) -> dict[str, Any]:
        return self._repository.resources

    def job_names(self) -> list[str]:
        return self._repository.job_names()

    def get_job(self, name: str) -> JobDefinition:
        """The job called `name`; raises UnknownJobError listing the jobs that exist."""
        return self._repository.get_job(name)

    def get_all_jobs(self) -> list[JobDefinition]:
        return self._repository.get_all_jobs()

    def schedule_names(self) -> list[str]:
        return self._repository.schedule_names()

    def get_schedule(self, name: str) -> ScheduleDefinition:
        """The schedule called `name`; raises UnknownDefinitionError listing those that exist."""
        return self._repository.get_schedule(name)

    def sensor_names(self) -> list[str]:
        return self._repository.sensor_names()

    def get_sensor(self, name: str) -> SensorDefinition:
        """The sensor called `name`; raises UnknownDefinitionError listing those that exist."""
        return self._repository.get_sensor(name)


def _is_single(items: object) -> bool:
    # A lone definition passed where a list belongs (assets=my_asset).
    return isinstance(
        items, (AssetsDefinition, JobDefinition, AssetJob, ScheduleDefinition, SensorDefinition)
    )
