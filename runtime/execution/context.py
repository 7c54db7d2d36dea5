"""StepContext: what a step function receives as its `context` parameter."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from runtime.errors import ExecutionError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import msgspec


class StepCanceledError(ExecutionError):
    """Raised by `StepContext.raise_if_cancelled()` once the step's run is being canceled."""


class StepLogger:
    """A logging.Logger look-alike whose records become LOG events of the step.

    Every level is kept (DEBUG included): the run's event log is the place to
    filter, and the records do not go through Python's logging machinery.
    """

    __slots__ = ("_log", "name")

    def __init__(self, name: str, log: Callable[[str, str, str], None]) -> None:
        self.name = name
        # (level name, logger name, message) -> None
        self._log = log

    def log(self, level: int, msg: object, *args: object, exc_info: bool = False) -> None:
        """Record `msg % args` at a numeric logging level."""
        message = str(msg) % args if args else str(msg)
        if exc_info:
            message = f"{message}\n{traceback.format_exc().rstrip()}"
        self._log(logging.getLevelName(level), self.name, message)

    def debug(self, msg: object, *args: object) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: object, *args: object) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: object, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: object, *args: object, exc_info: bool = False) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info)

    def exception(self, msg: object, *args: object) -> None:
        """Record at ERROR level with the traceback of the exception being handled."""
        self.log(logging.ERROR, msg, *args, exc_info=True)

    def critical(self, msg: object, *args: object) -> None:
        self.log(logging.CRITICAL, msg, *args)


class StepContext:
    """What a running step knows about itself; pass a `context` parameter to receive it.

    Attributes: run_id, step_key, op_name, asset_key (assets only), run_config
    (the step's validated config struct, or None), resources, retry_number
    (0 on the first attempt), log (a StepLogger).
    """

    __slots__ = (
        "_cancelled",
        "_engine_event",
        "asset_key",
        "log",
        "op_name",
        "output_metadata",
        "resources",
        "retry_number",
        "run_config",
        "run_id",
        "step_key",
    )

    def __init__(
        self,
        *,
        run_id: str,
        step_key: str,
        op_name: str,
        log: StepLogger,
        asset_key: str | None = None,
        run_config: msgspec.Struct | None = None,
        resources: Mapping[str, Any] | None = None,
        retry_number: int = 0,
        cancelled: Callable[[], bool] = lambda: False,
        engine_event: Callable[[str, dict[str, Any]], object] | None = None,
    ) -> None:
        self.run_id = run_id
        self.step_key = step_key
        self.op_name = op_name
        self.asset_key = asset_key
        self.run_config = run_config
        self.resources: Mapping[str, Any] = resources if resources is not None else {}
        self.retry_number = retry_number
        self.log = log
        self.output_metadata: dict[str, Any] = {}
        self._cancelled = cancelled
        self._engine_event = engine_event

    @property
    def is_cancelled(self) -> bool:
        """True once the run is being canceled; a long sync step should check it and return."""
        return self._cancelled()

    def raise_if_cancelled(self) -> None:
        """Raise StepCanceledError if the run is being canceled."""
        if self._cancelled():
            raise StepCanceledError(
                f"Step {self.step_key!r} of run {self.run_id!r} stopped: the run is being canceled."
            )

    def add_output_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Attach metadata (JSON-like values) to this step's output and asset materialization."""
        self.output_metadata.update(metadata)

    def log_event(self, message: str, metadata: Mapping[str, Any] | None = None) -> None:
        """Record a custom event of this step (an ENGINE_EVENT with the message and metadata)."""
        if self._engine_event is None:
            self.log.info(message)
        else:
            self._engine_event(message, dict(metadata or {}))

    def __repr__(self) -> str:
        return f"StepContext(run_id={self.run_id!r}, step_key={self.step_key!r}, retry_number={self.retry_number})"
