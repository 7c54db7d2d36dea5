"""StepRunner: where one step's function is called (the loop, a thread, a worker process, ...).

The step scheduler (runtime.execution.scheduler) decides when a step runs:
limits, pools, retries, events, cancellation. A StepRunner decides where its
function is called: it loads the step's inputs, calls the function, stores
the output and returns the value, raising what the function raised. Runners
are registered by name; an executor (runtime.execution.executors) maps each
step of a run to one of them. Adding a runner is a module with a class and a
`register_step_runner` call.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runtime.errors import ExecutionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import msgspec

    from runtime.definitions.graph import OpDefinition
    from runtime.execution.context import StepContext
    from runtime.execution.io_manager import IOManager
    from runtime.execution.plan import PlannedStep
    from runtime.protocol.messages import AnyPayload, EnginePayload, ErrorInfo, EventType
    from runtime.protocol.run_log import RunLog


class RunScope:
    """What every step call of one run shares: the run id, its IO manager, log, resources, configs."""

    __slots__ = ("emitter", "io", "resources", "run_id", "step_configs")

    def __init__(
        self,
        run_id: str,
        io: IOManager,
        emitter: RunLog,
        resources: Mapping[str, Any],
        step_configs: Mapping[str, msgspec.Struct],
    ) -> None:
        self.run_id = run_id
        self.io = io
        self.emitter = emitter
        self.resources = resources
        self.step_configs = step_configs


class StepCall:
    """One attempt of one step, as a runner sees it: the function, its inputs, where its output goes.

    `context` is the StepContext built on the loop when the op takes one
    (runners that call the function elsewhere build their own there).
    """

    # Made for every step attempt: positional arguments and few slots keep it cheap.
    __slots__ = ("context", "output_metadata", "output_summary", "retry_number", "scope", "step")

    def __init__(
        self,
        scope: RunScope,
        step: PlannedStep,
        retry_number: int,
        context: StepContext | None,
    ) -> None:
        self.scope = scope
        self.step = step
        self.retry_number = retry_number
        self.context = context
        # Metadata a function that ran elsewhere attached to its output.
        self.output_metadata: dict[str, Any] | None = None
        # (repr, type name) of an output that stayed where the function ran.
        self.output_summary: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return self.step.node.key

    @property
    def op(self) -> OpDefinition:
        return self.step.node.op

    @property
    def run_id(self) -> str:
        return self.scope.run_id

    @property
    def run_config(self) -> msgspec.Struct | None:
        """The step's validated config struct, or None."""
        return self.scope.step_configs.get(self.step.node.key)

    @property
    def resources(self) -> Mapping[str, Any]:
        return self.scope.resources

    @property
    def loads_block(self) -> bool:
        """True when `arguments()` may block (files): call it from a worker thread, not the loop."""
        return self.scope.io.blocking or bool(self.step.stored_inputs)

    @property
    def stores_block(self) -> bool:
        """True when `store()` may block: call it from a worker thread, not the loop."""
        return self.scope.io.blocking

    def arguments(self, with_context: bool = True) -> dict[str, Any]:
        """The function's keyword arguments: inputs from the IO manager, `context` and `config`.

        Raises OutputNotFoundError for an input with no stored value.
        """
        io = self.scope.io
        step = self.step
        kwargs = {name: io.load(up, out) for name, (up, out) in step.inputs.items()}
        for stored in step.stored_inputs:
            if stored.asset_key is not None:
                kwargs[stored.input_name] = io.load_asset(stored.asset_key)
            else:
                assert stored.upstream_step is not None
                kwargs[stored.input_name] = io.load(stored.upstream_step, stored.upstream_output)
        if with_context and self.context is not None:
            kwargs["context"] = self.context
        if step.node.op.config_type is not None:
            kwargs["config"] = self.scope.step_configs.get(step.node.key)
        return kwargs

    def store(self, value: Any) -> None:
        """Keep the function's value as the step's output."""
        node = self.step.node
        self.scope.io.store(node.key, "result", value, asset_key=node.op.asset_key)

    def emit(self, event_type: EventType, payload: AnyPayload) -> None:
        """Emit an event of this step (logs of a function that runs elsewhere). Safe from any thread."""
        self.scope.emitter.emit(event_type, self.step.node.key, payload)

    def add_output_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Attach metadata that a function running elsewhere gave its output."""
        if self.output_metadata is None:
            self.output_metadata = {}
        self.output_metadata.update(metadata)

    def describe_output(self, value_repr: str, type_name: str) -> None:
        """Say what the output is when the runner returns no value (it stayed on another machine)."""
        self.output_summary = (value_repr, type_name)


class StepRunner(Protocol):
    """Calls the functions of a run's steps in one place. One instance serves one run."""

    # Whether cancelling the run can interrupt a call in flight (a task on the
    # loop, a process). The scheduler waits for calls that cannot (threads).
    interruptible: bool

    async def call(self, call: StepCall) -> Any:
        """Load the inputs, call the step's function, store its output; return the value.

        Raises what the function raised (RemoteStepError when it ran elsewhere
        and only its description came back; RetryRequested as it is).
        """
        ...

    def stop(self, step_keys: Sequence[str]) -> EnginePayload | None:
        """The run is being canceled and these steps are in flight here: stop them now if possible.

        Returns the ENGINE_EVENT payload that says what was done, or None.
        Called on the event loop; must not block.
        """
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (worker processes); called once, after its last call."""
        ...


@runtime_checkable
class StartableRunner(Protocol):
    """A StepRunner that must reach something before the run starts (a cluster)."""

    async def start(self) -> EnginePayload | None:
        """Connect or start what the steps will run on; called once, before RUN_START.

        Returns the ENGINE_EVENT payload that says where the steps run, or
        None. Raises RunnerUnavailableError when that cannot be done: the run
        then fails with that one sentence, before it starts.
        """
        ...


class RunnerUnavailableError(ExecutionError):
    """A runner cannot reach or start what it runs steps on; the message names it (an address)."""


@dataclass(frozen=True, slots=True)
class RunnerSetup:
    """What a runner is made for: one run, the ops of the steps it will call, the executor's options."""

    run_id: str
    # Steps at once in the run (0: no limit).
    max_concurrent: int
    # One op per step the runner will call, in plan order.
    ops: tuple[OpDefinition, ...]
    # The run's executor_config.
    options: Mapping[str, Any]


class RemoteStepError(Exception):
    """A step failed where its exception could not come back (another process); carries its ErrorInfo."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


_RUNNERS: dict[str, Callable[[RunnerSetup], StepRunner]] = {}


def register_step_runner(name: str, factory: Callable[[RunnerSetup], StepRunner]) -> None:
    """Make a runner available to executors as `name`; `factory` builds one per run that uses it."""
    _RUNNERS[name] = factory


def step_runner_names() -> list[str]:
    """The names of the registered runners."""
    _register_builtin()
    return sorted(_RUNNERS)


def step_runner_factory(name: str) -> Callable[[RunnerSetup], StepRunner]:
    """The factory registered as `name`; raises ValueError naming the registered ones."""
    _register_builtin()
    factory = _RUNNERS.get(name)
    if factory is None:
        raise ValueError(unknown_name_message("step runner", name, _RUNNERS))
    return factory


def unknown_name_message(kind: str, name: str, known: Iterable[str], *, where: str = "") -> str:
    """'Unknown <kind> X<where>; the registered <kind>s are: ... Did you mean Y?'"""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown {kind} {name!r}{where}; the registered {kind}s are: {', '.join(names)}.{hint}"


def _register_builtin() -> None:
    # Imported on first use: the package registers the built-in runners.
    import runtime.execution.runners  # noqa: F401
