"""Route Python logging records and print() output made during a step to LOG events.

A context variable holds the step currently running in this task or thread
(asyncio tasks and anyio worker threads copy the context, so it follows the
step wherever it runs). One logging handler on the root logger and one proxy
on each of sys.stdout and sys.stderr are installed once; outside a step they
do nothing and the proxies pass writes through to the original streams.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from runtime.protocol.messages import LogPayload

if TYPE_CHECKING:
    from runtime.protocol.run_log import RunLog


class StepCapture:
    """Where the output of one running step goes: its emitter and step key.

    Partial lines written without a newline are held until the newline or
    until `flush()` at the end of the step.
    """

    __slots__ = ("_emitter", "_lock", "_partial", "step_key")

    def __init__(self, emitter: RunLog, step_key: str) -> None:
        self._emitter = emitter
        self.step_key = step_key
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()

    def log(self, level: str, logger: str, message: str, source: str = "logger") -> None:
        """Emit one LOG event for this step."""
        self._emitter.emit(
            "LOG",
            self.step_key,
            LogPayload(level=level, logger=logger, message=message, source=source),
        )

    def write(self, source: str, text: str) -> None:
        """Take text written to stdout or stderr; emit one LOG event per complete line."""
        with self._lock:
            text = self._partial.pop(source, "") + text
            *lines, rest = text.split("\n")
            if rest:
                self._partial[source] = rest
        level = "INFO" if source == "stdout" else "WARNING"
        for line in lines:
            self.log(level, source, line, source)

    def flush(self) -> None:
        """Emit whatever partial lines are left."""
        if not self._partial:
            # Called after every step; most steps leave no partial line.
            return
        with self._lock:
            partial, self._partial = self._partial, {}
        for source, text in partial.items():
            self.log("INFO" if source == "stdout" else "WARNING", source, text, source)


current_step: contextvars.ContextVar[StepCapture | None] = contextvars.ContextVar(
    "runtime_current_step", default=None
)


class _StepLogHandler(logging.Handler):
    """Turns records logged while a step runs into LOG events of that step."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = current_step.get()
        if capture is None:
            _last_resort(record)
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            capture.log(record.levelname, record.name, message)
        except Exception:
            self.handleError(record)


def _last_resort(record: logging.LogRecord) -> None:
    """Do what logging would have done had this handler not been installed.

    logging prints to stderr through `lastResort` only when no handler at all
    is found for a record; ours counts as one, so stand in for it outside steps.
    """
    last_resort = logging.lastResort
    if last_resort is None or record.levelno < last_resort.level:
        return
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(h, _StepLogHandler) for h in logger.handlers):
            return
        logger = logger.parent if logger.propagate else None
    last_resort.handle(record)


class _StreamProxy:
    """Stands in for sys.stdout or sys.stderr: writes made during a step become LOG events."""

    def __init__(self, wrapped: TextIO, source: str) -> None:
        self._wrapped = wrapped
        self._source = source

    def write(self, text: str) -> int:
        capture = current_step.get()
        if capture is None:
            return self._wrapped.write(text)
        capture.write(self._source, text)
        return len(text)

    def flush(self) -> None:
        if current_step.get() is None:
            self._wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty, fileno, buffer...: whatever the original offers.
        return getattr(self._wrapped, name)


_install_lock = threading.Lock()
_handler: _StepLogHandler | None = None


def install() -> None:
    """Install the logging handler and the stdout/stderr proxies if they are not in place.

    Cheap when already installed; called at the start of every run because
    test harnesses (pytest's capture) swap sys.stdout between runs.
    """
    global _handler
    if (
        _handler is not None
        and isinstance(sys.stdout, _StreamProxy)
        and isinstance(sys.stderr, _StreamProxy)
    ):
        return
    with _install_lock:
        if _handler is None:
            _handler = _StepLogHandler()
            logging.getLogger().addHandler(_handler)
        if not isinstance(sys.stdout, _StreamProxy):
            sys.stdout = _StreamProxy(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _StreamProxy):
            sys.stderr = _StreamProxy(sys.stderr, "stderr")
