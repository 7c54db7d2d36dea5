"""LocationFailure: why a code location (its code server process, or its code) failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.protocol.messages import ErrorInfo, LoadTimings


@dataclass(frozen=True, kw_only=True)
class LocationFailure:
    """Why a location is in error (or why its last reload failed).

    `type`, `message` and `traceback` come from the user's exception when user
    code failed to import, or describe the process (exit code, signal,
    deadline) otherwise. `timings` tells which imports took longest.
    """

    type: str
    message: str
    traceback: str = ""
    hints: tuple[str, ...] = ()
    timings: LoadTimings | None = None
    # time.time() when it happened.
    time: float = 0.0

    @property
    def first_line(self) -> str:
        """The first line of the message, for tables."""
        lines = self.message.strip().splitlines()
        return lines[0] if lines else self.type

    def describe(self) -> str:
        """The whole failure as text: message, hints and traceback."""
        parts = [f"{self.type}: {self.message}"]
        parts += [f"hint: {hint}" for hint in self.hints]
        if self.traceback:
            parts.append(self.traceback.rstrip())
        return "\n".join(parts)

    @classmethod
    def from_error_info(
        cls, info: ErrorInfo, *, timings: LoadTimings | None, time: float
    ) -> LocationFailure:
        """A failure from an ErrorInfo the code server sent.

        The code server wraps the user's exception (its `cause`); `type` is the
        user's exception type, which is what the user needs to see first.
        """
        type_ = info.type
        traceback = info.traceback
        hints = list(info.hints)
        cause = info.cause
        while cause is not None:
            type_ = cause.type
            hints += [hint for hint in cause.hints if hint not in hints]
            if cause.traceback and cause.traceback not in traceback:
                traceback = f"{traceback.rstrip()}\n\nCaused by {cause.type}: {cause.message}\n{cause.traceback}"
            cause = cause.cause
        return cls(
            type=type_,
            message=info.message,
            traceback=traceback,
            hints=tuple(hints),
            timings=timings,
            time=time,
        )
