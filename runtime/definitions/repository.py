"""RepositoryDefinition: the one read interface the code server uses, and @repository.

Definitions and @repository functions both end up here. Jobs, schedules and
sensors may be zero-argument callables that are built on first request only,
so `job_names()` never builds anything and `get_job()` builds one job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from runtime.definitions.asset import AssetsDefinition
from runtime.definitions.asset_graph import AssetGraph, closest
from runtime.definitions.asset_job import AssetJob
from runtime.definitions.graph import ASSET_JOB_NAME, JobDefinition
from runtime.definitions.introspect import check_name, short_repr
from runtime.definitions.schedule import ScheduleDefinition
from runtime.definitions.sensor import SensorDefinition
from runtime.errors import (
    DefinitionError,
    RuntimeFrameworkError,
    UnknownDefinitionError,
    UnknownJobError,
)

if TYPE_CHECKING:
    from runtime.definitions.schedule import JobTarget

JobEntry = JobDefinition | AssetJob | Callable[[], object]
ScheduleEntry = ScheduleDefinition | Callable[[], object]
SensorEntry = SensorDefinition | Callable[[], object]

_T = TypeVar("_T")

_DICT_KEYS = ("jobs", "schedules", "sensors")


class RepositoryDefinition:
    """Named jobs, assets, schedules, sensors and resources of one code location.

    Eager entries are checked now; lazy entries (zero-argument callables) when
    first requested. Raises DefinitionError for duplicate names, a bad asset
    graph, or a schedule/sensor targeting a job the repository does not have.
    """

    def __init__(
        self,
        name: str,
        *,
        jobs: Mapping[str, JobEntry] | None = None,
        schedules: Mapping[str, ScheduleEntry] | None = None,
        sensors: Mapping[str, SensorEntry] | None = None,
        assets: Iterable[AssetsDefinition] = (),
        resources: Mapping[str, Any] | None = None,
        description: str | None = None,
        where: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        # How error messages name this repository.
        self.where = where or f"repository {name!r}"
        self.asset_graph = AssetGraph(assets, where=self.where)
        self.assets: list[AssetsDefinition] = list(self.asset_graph.by_key.values())
        self.resources: dict[str, Any] = dict(resources or {})
        self._lock = threading.RLock()
        self._job_entries: dict[str, JobEntry] = {}
        self._jobs: dict[str, JobDefinition] = {}
        self._schedule_entries: dict[str, ScheduleEntry] = dict(schedules or {})
        self._schedules: dict[str, ScheduleDefinition] = {}
        self._sensor_entries: dict[str, SensorEntry] = dict(sensors or {})
        self._sensors: dict[str, SensorDefinition] = {}

        for key, entry in (jobs or {}).items():
            if key == ASSET_JOB_NAME:
                raise DefinitionError(
                    f"{self.where} defines a job named {ASSET_JOB_NAME!r}; that name is "
                    "reserved for the implicit job over all assets."
                )
            self._job_entries[key] = entry
            if isinstance(entry, (JobDefinition, AssetJob)):
                self._check_built_name("job", key, entry.name)
            if isinstance(entry, AssetJob) and entry.selection is not None:
                self.asset_graph.check_selection(entry.name, entry.selection)
        if self.assets:
            self._job_entries[ASSET_JOB_NAME] = AssetJob(ASSET_JOB_NAME, None)

        both = self._schedule_entries.keys() & self._sensor_entries.keys()
        if both:
            raise DefinitionError(
                f"{self.where} has a schedule and a sensor both named {sorted(both)[0]!r}; "
                "schedules and sensors share one namespace."
            )
        for key, schedule in self._schedule_entries.items():
            if isinstance(schedule, ScheduleDefinition):
                self._schedules[key] = self._checked_schedule(key, schedule)
        for key, sensor in self._sensor_entries.items():
            if isinstance(sensor, SensorDefinition):
                self._sensors[key] = self._checked_sensor(key, sensor)

    def __repr__(self) -> str:
        return f"<repository {self.name!r}>"

    # --- jobs ---------------------------------------------------------------

    def job_names(self) -> list[str]:
        """Every job name, in definition order, without building lazy jobs."""
        return list(self._job_entries)

    def has_job(self, name: str) -> bool:
        return name in self._job_entries

    def get_job(self, name: str) -> JobDefinition:
        """The job called `name`, built on first request.

        Raises UnknownJobError listing the jobs that exist, or DefinitionError
        when a lazy entry fails to build or builds a job with another name.
        """
        job = self._jobs.get(name)
        if job is not None:
            return job
        entry = self._job_entries.get(name)
        if entry is None:
            raise UnknownJobError(
                f"{self.where} has no job named {name!r}{closest(name, self._job_entries)}; "
                f"its jobs are: {', '.join(self._job_entries) or 'none'}."
            )
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                job = self._build_job(name, entry)
                self._jobs[name] = job
            return job

    def get_all_jobs(self) -> list[JobDefinition]:
        """Every job, building the lazy ones."""
        return [self.get_job(name) for name in self._job_entries]

    def _build_job(self, key: str, entry: JobEntry) -> JobDefinition:
        built: object = entry
        if not isinstance(entry, (JobDefinition, AssetJob)):
            built = self._call_builder("job", key, entry)
        if isinstance(built, AssetJob):
            self._check_built_name("job", key, built.name)
            return built.resolve(self.asset_graph)
        if isinstance(built, JobDefinition):
            self._check_built_name("job", key, built.name)
            return built
        raise DefinitionError(
            f"{self.where}: the entry for job {key!r} built {short_repr(built)}, not a job "
            "(from @job or define_asset_job)."
        )

    # --- schedules and sensors ----------------------------------------------

    def schedule_names(self) -> list[str]:
        """Every schedule name, without building lazy schedules."""
        return list(self._schedule_entries)

    def get_schedule(self, name: str) -> ScheduleDefinition:
        """The schedule called `name`, built on first request.

        Raises UnknownDefinitionError listing the schedules that exist, or
        DefinitionError when a lazy entry fails to build or is invalid.
        """
        schedule = self._schedules.get(name)
        if schedule is not None:
            return schedule
        entry = self._entry("schedule", name, self._schedule_entries)
        with self._lock:
            schedule = self._schedules.get(name)
            if schedule is None:
                built = self._call_builder("schedule", name, entry)
                if not isinstance(built, ScheduleDefinition):
                    raise DefinitionError(
                        f"{self.where}: the entry for schedule {name!r} built {short_repr(built)}, "
                        "not a schedule."
                    )
                schedule = self._checked_schedule(name, built)
                self._schedules[name] = schedule
            return schedule

    def get_all_schedules(self) -> list[ScheduleDefinition]:
        return [self.get_schedule(name) for name in self._schedule_entries]

    def sensor_names(self) -> list[str]:
        """Every sensor name, without building lazy sensors."""
        return list(self._sensor_entries)

    def get_sensor(self, name: str) -> SensorDefinition:
        """The sensor called `name`, built on first request.

        Raises UnknownDefinitionError listing the sensors that exist, or
        DefinitionError when a lazy entry fails to build or is invalid.
        """
        sensor = self._sensors.get(name)
        if sensor is not None:
            return sensor
        entry = self._entry("sensor", name, self._sensor_entries)
        with self._lock:
            sensor = self._sensors.get(name)
            if sensor is None:
                built = self._call_builder("sensor", name, entry)
                if not isinstance(built, SensorDefinition):
                    raise DefinitionError(
                        f"{self.where}: the entry for sensor {name!r} built {short_repr(built)}, "
                        "not a sensor."
                    )
                sensor = self._checked_sensor(name, built)
                self._sensors[name] = sensor
            return sensor

    def get_all_sensors(self) -> list[SensorDefinition]:
        return [self.get_sensor(name) for name in self._sensor_entries]

    # --- helpers ------------------------------------------------------------

    def _entry(self, kind: str, name: str, entries: Mapping[str, _T]) -> _T:
        entry = entries.get(name)
        if entry is None:
            raise UnknownDefinitionError(
                f"{self.where} has no {kind} named {name!r}{closest(name, entries)}; "
                f"its {kind}s are: {', '.join(entries) or 'none'}."
            )
        return entry

    def _call_builder(self, kind: str, key: str, builder: object) -> object:
        if not callable(builder):
            raise DefinitionError(
                f"{self.where}: the entry for {kind} {key!r} is {short_repr(builder)}, "
                f"neither a {kind} nor a zero-argument function that builds one."
            )
        try:
            return builder()
        except RuntimeFrameworkError:
            raise
        except Exception as exc:
            raise DefinitionError(
                f"{self.where}: building {kind} {key!r} raised {type(exc).__name__}: {exc}"
            ) from exc

    def _check_built_name(self, kind: str, key: str, built_name: str) -> None:
        if built_name != key:
            raise DefinitionError(
                f"{self.where}: the {kind} under the key {key!r} is named {built_name!r}; "
                "the key and the name must match."
            )

    def _check_target(self, kind: str, name: str, job_name: str | None) -> None:
        if job_name is not None and job_name not in self._job_entries:
            raise DefinitionError(
                f"{kind} {name!r} of {self.where} targets job {job_name!r}, which the "
                f"repository does not have{closest(job_name, self._job_entries)}."
            )

    def _checked_schedule(self, key: str, schedule: ScheduleDefinition) -> ScheduleDefinition:
        self._check_built_name("schedule", key, schedule.name)
        self._check_target("schedule", schedule.name, schedule.job_name)
        return schedule

    def _checked_sensor(self, key: str, sensor: SensorDefinition) -> SensorDefinition:
        self._check_built_name("sensor", key, sensor.name)
        self._check_target("sensor", sensor.name, sensor.job_name)
        return sensor


class DefinitionSet:
    """Jobs, schedules, sensors and assets gathered from loose objects, with duplicates checked.

    Jobs that schedules and sensors target as objects join the jobs. Raises
    DefinitionError naming `where` for two different objects with one name or
    an object of an unexpected type.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.jobs: dict[str, JobEntry] = {}
        self.schedules: dict[str, ScheduleEntry] = {}
        self.sensors: dict[str, SensorEntry] = {}
        self.assets: list[AssetsDefinition] = []

    def add(self, item: object) -> None:
        if isinstance(item, AssetsDefinition):
            self.assets.append(item)
        elif isinstance(item, (JobDefinition, AssetJob)):
            self._add_named("job", self.jobs, item.name, item)
        elif isinstance(item, ScheduleDefinition):
            self._add_named("schedule", self.schedules, item.name, item)
        elif isinstance(item, SensorDefinition):
            self._add_named("sensor", self.sensors, item.name, item)
        else:
            raise DefinitionError(
                f"{self.where} got {short_repr(item)}; expected assets, jobs, schedules or sensors."
            )

    def add_targets(self) -> None:
        """Add the jobs that schedules and sensors target as objects."""
        for owner in (*self.schedules.values(), *self.sensors.values()):
            target: JobTarget | None = getattr(owner, "job", None)
            if target is None:
                continue
            existing = self.jobs.get(target.name)
            if existing is None:
                self.jobs[target.name] = target
            elif existing is not target:
                raise DefinitionError(
                    f"{owner!r} targets a job named {target.name!r}, but {self.where} has "
                    "another job with that name."
                )

    def _add_named(self, kind: str, named: dict[str, Any], name: str, item: object) -> None:
        existing = named.get(name)
        if existing is None:
            named[name] = item
        elif existing is not item:
            raise DefinitionError(f"{self.where} has two different {kind}s named {name!r}.")


def _from_list(name: str, items: Iterable[object], description: str | None) -> RepositoryDefinition:
    collected = DefinitionSet(f"repository {name!r}")
    for item in items:
        collected.add(item)
    collected.add_targets()
    return RepositoryDefinition(
        name,
        jobs=collected.jobs,
        schedules=collected.schedules,
        sensors=collected.sensors,
        assets=collected.assets,
        description=description,
    )


def _from_dict(
    name: str, data: Mapping[str, object], description: str | None
) -> RepositoryDefinition:
    where = f"repository {name!r}"
    unknown = [key for key in data if key not in _DICT_KEYS]
    if unknown:
        raise DefinitionError(
            f"{where} returned a dict with the key {unknown[0]!r}; "
            f"the keys are {', '.join(map(repr, _DICT_KEYS))}."
        )
    sections: dict[str, dict[str, Any]] = {}
    for section in _DICT_KEYS:
        entries = data.get(section, {})
        if not isinstance(entries, Mapping):
            raise DefinitionError(
                f"{where}: {section!r} must map names to definitions or zero-argument "
                f"functions, got {short_repr(entries)}."
            )
        for key in entries:
            check_name(key, kind=f"{where}: {section[:-1]}")
        sections[section] = dict(entries)
    jobs = sections["jobs"]
    for owner in (*sections["schedules"].values(), *sections["sensors"].values()):
        # Eager schedules and sensors bring the job objects they target, as in the list form.
        target = getattr(owner, "job", None)
        if isinstance(owner, (ScheduleDefinition, SensorDefinition)) and target is not None:
            existing = jobs.setdefault(target.name, target)
            if isinstance(existing, (JobDefinition, AssetJob)) and existing is not target:
                raise DefinitionError(
                    f"{owner!r} targets a job named {target.name!r}, but {where} has "
                    "another job with that name."
                )
    return RepositoryDefinition(
        name,
        jobs=sections["jobs"],
        schedules=sections["schedules"],
        sensors=sections["sensors"],
        description=description,
    )


def _build_repository(
    fn: Callable[[], object], name: str | None, description: str | None
) -> RepositoryDefinition:
    repo_name = check_name(name or getattr(fn, "__name__", None), kind="repository")
    content = fn()
    if isinstance(content, Mapping):
        return _from_dict(repo_name, content, description)
    if isinstance(content, (list, tuple)):
        return _from_list(repo_name, content, description)
    raise DefinitionError(
        f"repository {repo_name!r} returned {short_repr(content)}; return a list of definitions or a "
        'dict {"jobs": {...}, "schedules": {...}, "sensors": {...}}.'
    )


@overload
def repository(fn: Callable[[], object], /) -> RepositoryDefinition: ...


@overload
def repository(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[[], object]], RepositoryDefinition]: ...


def repository(
    fn: Callable[[], object] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> RepositoryDefinition | Callable[[Callable[[], object]], RepositoryDefinition]:
    """Define a repository from a function returning a list of definitions, or a dict
    `{"jobs": {...}, "schedules": {...}, "sensors": {...}}` whose values are
    definitions or zero-argument functions built only when first asked for.

    The function runs now. Raises DefinitionError for duplicate names, an
    unexpected item, or an eager entry whose name differs from its key.
    """

    def decorate(f: Callable[[], object]) -> RepositoryDefinition:
        return _build_repository(f, name, description)

    if fn is not None:
        return decorate(fn)
    return decorate
