"""Every payload that crosses the wire between host and code server.

The protobuf envelopes in proto/runtime_api.proto carry only a protocol version
and bytes; the bytes are msgpack-encoded structs from this module. One module
owns them all so that a change to the protocol is a change to one file, and
bumping PROTOCOL_VERSION is the rule for any change that an older peer could
not decode.

Structs are frozen, keyword-only and omit defaults so messages stay small.
Encoders and decoders are built once at import; use `encode` and `decode_*`.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec

PROTOCOL_VERSION = 1

# Large payloads (snapshots of 10,000 assets) are sliced into chunks well under
# grpclib's default 4 MiB message limit.
CHUNK_SIZE = 1024 * 1024


class Message(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Base of every payload. msgspec does not inherit kw_only (and mypy not frozen): every subclass states both."""


# --- errors -----------------------------------------------------------------


class ErrorInfo(Message, kw_only=True, frozen=True):
    """A user-code or load error captured as data: type, message, traceback."""

    type: str
    message: str
    traceback: str = ""
    # Extra lines that tell the user what to do (e.g. set working_directory).
    hints: list[str] = []
    cause: ErrorInfo | None = None


# --- control plane ----------------------------------------------------------


class PingRequest(Message, kw_only=True, frozen=True):
    echo: str = ""


class PingReply(Message, kw_only=True, frozen=True):
    echo: str = ""
    server_id: str


class HeartbeatRequest(Message, kw_only=True, frozen=True):
    # Who is keeping the server alive; logged, not checked.
    sender: str = ""


class HeartbeatReply(Message, kw_only=True, frozen=True):
    server_id: str


class ServerInfoRequest(Message, kw_only=True, frozen=True):
    pass


class ServerInfo(Message, kw_only=True, frozen=True):
    server_id: str
    pid: int
    python_version: str
    runtime_version: str
    protocol_version: int
    location_name: str
    executable: str = ""
    # Wall-clock time the server process started (time.time()).
    started_at: float = 0.0
    # "loading" | "loaded" | "error"
    load_status: str = "loaded"


class ShutdownRequest(Message, kw_only=True, frozen=True):
    # Seconds to let in-flight runs finish before the server exits.
    grace_seconds: float = 0.0


class ShutdownReply(Message, kw_only=True, frozen=True):
    server_id: str
    # Runs still in flight when the server accepted the shutdown.
    runs_in_flight: int = 0


# --- load timings -----------------------------------------------------------


class ModuleImportTime(Message, kw_only=True, frozen=True):
    module: str
    seconds: float


class LoadTimings(Message, kw_only=True, frozen=True):
    """How long loading took and which imports dominated it."""

    import_seconds: float = 0.0
    total_seconds: float = 0.0
    # The slowest top-level-attributed imports, slowest first.
    slowest_modules: list[ModuleImportTime] = []
    # The module being imported when the load was interrupted, if it was.
    importing_module: str | None = None


# --- snapshot: what a code location defines ---------------------------------


class RetryPolicySnapshot(Message, kw_only=True, frozen=True):
    max_retries: int = 1
    delay: float = 0.0
    backoff: Literal["constant", "linear", "exponential"] = "constant"
    jitter: Literal["none", "full", "plus_minus"] = "none"


class StepInputSnapshot(Message, kw_only=True, frozen=True):
    """An input of a step and the upstream output that feeds it."""

    name: str
    # Upstream step key; None for an input with no upstream (a config-less root).
    upstream_step: str | None = None
    upstream_output: str = "result"
    # Asset jobs: the upstream asset read from the IO manager because it is not a step of this job.
    upstream_asset: str | None = None


class StepSnapshot(Message, kw_only=True, frozen=True):
    key: str
    kind: Literal["op", "asset"] = "op"
    inputs: list[StepInputSnapshot] = []
    is_async: bool = False
    pool: str | None = None
    description: str | None = None
    tags: dict[str, str] = {}
    # JSON schema of the step's config struct, when it takes `config`.
    config_schema: dict[str, Any] | None = None
    retry_policy: RetryPolicySnapshot | None = None
    # Steps that must finish first without passing a value (asset deps=).
    after: list[str] = []


class JobSnapshot(Message, kw_only=True, frozen=True):
    name: str
    description: str | None = None
    tags: dict[str, str] = {}
    steps: list[StepSnapshot] = []
    # True for the implicit asset job and for define_asset_job jobs.
    is_asset_job: bool = False


class AssetSnapshot(Message, kw_only=True, frozen=True):
    key: str
    deps: list[str] = []
    group_name: str = "default"
    description: str | None = None
    tags: dict[str, str] = {}
    is_async: bool = False
    # The jobs that materialize this asset.
    job_names: list[str] = []


class ScheduleSnapshot(Message, kw_only=True, frozen=True):
    name: str
    cron_schedule: str
    job_name: str
    execution_timezone: str = "UTC"
    description: str | None = None
    default_status: Literal["running", "stopped"] = "stopped"


class SensorSnapshot(Message, kw_only=True, frozen=True):
    name: str
    job_name: str | None = None
    minimum_interval_seconds: int = 30
    description: str | None = None
    default_status: Literal["running", "stopped"] = "stopped"


class Snapshot(Message, kw_only=True, frozen=True):
    """Everything the host needs to know about a location, or why it failed."""

    location_name: str
    server_id: str
    jobs: list[JobSnapshot] = []
    assets: list[AssetSnapshot] = []
    schedules: list[ScheduleSnapshot] = []
    sensors: list[SensorSnapshot] = []
    timings: LoadTimings = LoadTimings()
    # Set when user code failed to load (only with --lazy-load-user-code).
    error: ErrorInfo | None = None


class SnapshotRequest(Message, kw_only=True, frozen=True):
    pass


# --- runs -------------------------------------------------------------------


class ExecuteRunRequest(Message, kw_only=True, frozen=True):
    run_id: str
    job_name: str
    run_config: dict[str, Any] = {}
    tags: dict[str, str] = {}
    # Step keys to run; None runs the whole job.
    step_selection: list[str] | None = None
    # Re-execution: step keys whose outputs are read from this earlier run's
    # stored outputs instead of being recomputed.
    parent_run_id: str | None = None
    reused_steps: list[str] = []
    # Where the filesystem IO manager keeps outputs (under RUNTIME_HOME).
    storage_dir: str | None = None
    # The name of an executor registered in the code server
    # (runtime.execution.executors: "in_process", "multiprocess", ...) and its
    # options; a name the server does not know ends the run with a
    # RUN_FAILURE listing the ones it has.
    executor: str = "in_process"
    executor_config: dict[str, Any] = {}
    max_concurrent: int = 0
    pool_limits: dict[str, int] = {}
    # The sequence number of the first event the server emits: the host has
    # already stored the events before it (RUN_STARTING).
    first_sequence: int = 1


class ValidateRunRequest(Message, kw_only=True, frozen=True):
    job_name: str
    run_config: dict[str, Any] = {}
    step_selection: list[str] | None = None
    # The executor the run would use; None checks nothing about it.
    executor: str | None = None
    executor_config: dict[str, Any] = {}
    max_concurrent: int = 0
    pool_limits: dict[str, int] = {}


class ValidateRunReply(Message, kw_only=True, frozen=True):
    # None when the run may be launched.
    error: ErrorInfo | None = None
    # What was wrong: "unknown_job" | "run_config" | "step_selection" | "executor" | "definition".
    problem: str | None = None


class CancelRunRequest(Message, kw_only=True, frozen=True):
    run_id: str


class CancelRunReply(Message, kw_only=True, frozen=True):
    run_id: str
    # False when the server did not know the run (already finished).
    found: bool


EventType = Literal[
    "RUN_STARTING",
    "RUN_START",
    "STEP_START",
    "STEP_OUTPUT",
    "STEP_SUCCESS",
    "STEP_FAILURE",
    "STEP_SKIPPED",
    "STEP_UP_FOR_RETRY",
    "STEP_RESTARTED",
    "ASSET_MATERIALIZATION",
    "LOG",
    "ENGINE_EVENT",
    "RUN_SUCCESS",
    "RUN_FAILURE",
    "RUN_CANCELING",
    "RUN_CANCELED",
]

# The events that end a run; exactly one of them is a run's last event.
RUN_END_EVENTS: frozenset[str] = frozenset({"RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"})


class EventPayload(Message, tag_field="kind", kw_only=True, frozen=True):
    """Base of the tagged union carried in RunEvent.payload."""


class NoPayload(EventPayload, tag="none", kw_only=True, frozen=True):
    pass


class StepOutputPayload(EventPayload, tag="output", kw_only=True, frozen=True):
    output_name: str = "result"
    # Short repr of the value, for display; the value itself is in the IO manager.
    value_repr: str = ""
    type_name: str = ""


class StepSuccessPayload(EventPayload, tag="success", kw_only=True, frozen=True):
    duration_seconds: float


class StepFailurePayload(EventPayload, tag="failure", kw_only=True, frozen=True):
    error: ErrorInfo
    retry_number: int = 0


class StepSkippedPayload(EventPayload, tag="skipped", kw_only=True, frozen=True):
    reason: str


class StepRetryPayload(EventPayload, tag="retry", kw_only=True, frozen=True):
    error: ErrorInfo | None = None
    retry_number: int
    delay_seconds: float


class AssetMaterializationPayload(EventPayload, tag="materialization", kw_only=True, frozen=True):
    asset_key: str
    metadata: dict[str, Any] = {}


class LogPayload(EventPayload, tag="log", kw_only=True, frozen=True):
    level: str = "INFO"
    logger: str = ""
    message: str
    # "logger" for context.log and logging records, "stdout"/"stderr" for captured output.
    source: str = "logger"


class EnginePayload(EventPayload, tag="engine", kw_only=True, frozen=True):
    message: str
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = {}


class RunFailurePayload(EventPayload, tag="run_failure", kw_only=True, frozen=True):
    message: str
    failed_steps: list[str] = []
    error: ErrorInfo | None = None


AnyPayload = (
    NoPayload
    | StepOutputPayload
    | StepSuccessPayload
    | StepFailurePayload
    | StepSkippedPayload
    | StepRetryPayload
    | AssetMaterializationPayload
    | LogPayload
    | EnginePayload
    | RunFailurePayload
)


class RunEvent(Message, kw_only=True, frozen=True):
    """One event of a run. `sequence` is gapless per run, starting at 1."""

    run_id: str
    sequence: int
    timestamp: float
    event_type: EventType
    step_key: str | None = None
    payload: AnyPayload = NoPayload()


class EventBatch(Message, kw_only=True, frozen=True):
    events: list[RunEvent]


# --- schedules and sensors --------------------------------------------------


class EvaluateScheduleRequest(Message, kw_only=True, frozen=True):
    schedule_name: str
    # The tick time being evaluated, as a Unix timestamp.
    scheduled_time: float


class EvaluateSensorRequest(Message, kw_only=True, frozen=True):
    sensor_name: str
    cursor: str | None = None
    last_tick_time: float | None = None


class RunRequestData(Message, kw_only=True, frozen=True):
    run_key: str | None = None
    job_name: str | None = None
    run_config: dict[str, Any] = {}
    tags: dict[str, str] = {}


class TickResult(Message, kw_only=True, frozen=True):
    run_requests: list[RunRequestData] = []
    skip_reason: str | None = None
    cursor: str | None = None
    error: ErrorInfo | None = None


# --- codecs -----------------------------------------------------------------

_encoder = msgspec.msgpack.Encoder()


def encode(message: Message) -> bytes:
    """Encode any payload struct to bytes."""
    return _encoder.encode(message)


T = TypeVar("T")


def decoder(type_: type[T]) -> msgspec.msgpack.Decoder[T]:
    """A decoder for one payload type; build once, at module level, and reuse."""
    return msgspec.msgpack.Decoder(type_)
