"""The HTTP API's bodies: every request and response is one of these msgspec Structs.

They are the contract (tests outside the project read these field names) and
the source of the OpenAPI description, which is generated from them. Times are
Unix seconds.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Body(msgspec.Struct, kw_only=True):
    """Base of every API body (msgspec does not inherit kw_only: every subclass states it)."""


class ErrorBody(Body, kw_only=True):
    """A failure: `type` is the error's class (as the Python API raises it), `message` says what is wrong."""

    type: str
    message: str
    # Extra detail where there is some: a location's error, the path of a bad value.
    detail: dict[str, Any] | None = None


class ErrorReply(Body, kw_only=True):
    error: ErrorBody


class LocationErrorBody(Body, kw_only=True):
    type: str
    message: str
    traceback: str = ""
    hints: list[str] = []
    time: float = 0.0


class LocationBody(Body, kw_only=True):
    name: str
    status: str
    error: LocationErrorBody | None
    server_id: str | None
    pid: int | None
    jobs: list[str]
    assets: list[str]
    schedules: list[str]
    sensors: list[str]
    # Seconds from spawn (or connect) to a snapshot in hand, for the last load.
    load_time: float | None
    kind: str
    updated_at: float


class StepInputBody(Body, kw_only=True):
    name: str
    upstream_step: str | None = None
    upstream_output: str | None = None
    upstream_asset: str | None = None


class StepBody(Body, kw_only=True):
    key: str
    kind: str
    is_async: bool
    pool: str | None
    description: str | None
    tags: dict[str, str]
    inputs: list[StepInputBody]
    # Steps this one waits for (data inputs and ordering-only `after`).
    upstream: list[str]
    config_schema: dict[str, Any] | None


class EdgeBody(Body, kw_only=True):
    """`source` runs before `target`; `input` is the target's input fed by it (None: ordering only)."""

    source: str
    target: str
    input: str | None = None


class JobBody(Body, kw_only=True):
    name: str
    location: str
    description: str | None
    tags: dict[str, str]
    is_asset_job: bool
    steps: list[StepBody]
    edges: list[EdgeBody]


class MaterializationBody(Body, kw_only=True):
    run_id: str
    step_key: str | None
    timestamp: float
    metadata: dict[str, Any] = {}


class AssetBody(Body, kw_only=True):
    key: str
    location: str
    deps: list[str]
    group_name: str
    description: str | None
    tags: dict[str, str]
    job_names: list[str]
    latest_materialization: MaterializationBody | None


class LaunchRequest(Body, kw_only=True, forbid_unknown_fields=True):
    """A run to launch. `run_config` is a mapping, or YAML text (what the launchpad sends)."""

    job: str
    location: str | None = None
    run_config: dict[str, Any] | str | None = None
    tags: dict[str, str] = {}
    step_selection: list[str] | None = None


class ReexecuteRequest(Body, kw_only=True, forbid_unknown_fields=True):
    """Re-execute a run; with `from_failure` only the steps that did not succeed run."""

    from_failure: bool = True


class RunIdReply(Body, kw_only=True):
    run_id: str


class RunStatusReply(Body, kw_only=True):
    run_id: str
    status: str


class RunBody(Body, kw_only=True):
    run_id: str
    job: str
    location: str | None
    status: str
    tags: dict[str, str]
    created_at: float
    started_at: float | None
    ended_at: float | None
    updated_at: float
    parent_run_id: str | None
    root_run_id: str | None
    failure_reason: str | None


class StepOutcomeBody(Body, kw_only=True):
    step_key: str
    status: str
    start_time: float | None
    end_time: float | None
    attempts: int
    error: dict[str, Any] | None
    skip_reason: str | None


class RunDetailBody(RunBody, kw_only=True):
    run_config: dict[str, Any]
    step_selection: list[str] | None
    event_count: int
    steps: list[StepOutcomeBody]


class EventBody(Body, kw_only=True):
    """One run event as the API sends it; `message` is a line a person reads, `payload` the data."""

    run_id: str
    sequence: int
    event_type: str
    step_key: str | None
    timestamp: float
    message: str
    level: str
    payload: dict[str, Any]


class TickBody(Body, kw_only=True):
    tick_id: str
    tick_time: float
    status: str
    run_ids: list[str] = []
    skip_reason: str | None = None
    error: str | None = None


class InstigatorBody(Body, kw_only=True):
    """A schedule or sensor: what it runs and whether it is running."""

    name: str
    location: str
    kind: str
    job_name: str | None
    description: str | None
    status: str
    default_status: str
    # Schedules: cron and timezone; sensors: the interval.
    cron_schedule: str | None = None
    execution_timezone: str | None = None
    minimum_interval_seconds: int | None = None
    # False while no status is stored for it: it runs with its default status.
    state_stored: bool = False
    cursor: str | None = None
    last_tick_at: float | None = None
    # The most recent evaluations, newest first.
    ticks: list[TickBody] = []


class InstigatorStatusRequest(Body, kw_only=True, forbid_unknown_fields=True):
    """Which location's schedule or sensor to start or stop (needed when the name is not unique)."""

    location: str | None = None


class LocationChange(Body, kw_only=True):
    """One location status change, as the live stream of locations sends it."""

    location: LocationBody
    old_status: str | None
