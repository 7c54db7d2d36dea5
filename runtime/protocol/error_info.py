"""Turn an exception into ErrorInfo: the error as data that crosses the wire."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.protocol.messages import ErrorInfo

if TYPE_CHECKING:
    from collections.abc import Callable

_RUNTIME_DIR = str(Path(__file__).resolve().parent.parent)


def is_framework_frame(filename: str) -> bool:
    """True for frames of the import machinery and of this package's loader and server.

    Users read tracebacks of their own code; the frames that led into it from
    here are noise.
    """
    if filename.startswith("<frozen importlib"):
        return True
    return filename.startswith(_RUNTIME_DIR) and not filename.startswith(
        (_RUNTIME_DIR + "/definitions", _RUNTIME_DIR + "/execution")
    )


def format_user_traceback(
    exc: BaseException, *, hide: Callable[[str], bool] = is_framework_frame
) -> str:
    """The traceback of exc (with its causes) without the frames `hide` rejects."""
    summary = traceback.TracebackException.from_exception(exc)
    current: traceback.TracebackException | None = summary
    while current is not None:
        kept = [frame for frame in current.stack if not hide(frame.filename)]
        current.stack = traceback.StackSummary.from_list(kept)
        current = current.__cause__ or current.__context__
    return "".join(summary.format())


def error_info(
    exc: BaseException,
    *,
    hints: list[str] | None = None,
    cause: ErrorInfo | None = None,
) -> ErrorInfo:
    """Capture exc as ErrorInfo: qualified type name, message, user-facing traceback.

    `hints` default to the exception's own `hints` attribute (LoadError has one).
    """
    exc_type = type(exc)
    module = exc_type.__module__
    type_name = (
        exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
    )
    own_hints = getattr(exc, "hints", None)
    return ErrorInfo(
        type=type_name,
        message=str(exc),
        traceback=format_user_traceback(exc),
        hints=list(hints if hints is not None else own_hints or []),
        cause=cause,
    )


def describe_error(error: ErrorInfo) -> str:
    """A human-readable report of an ErrorInfo: type and message, hints, then the traceback."""
    lines = [f"{error.type}: {error.message}"]
    lines += [f"  hint: {hint}" for hint in error.hints]
    text = "\n".join(lines)
    if error.traceback:
        text += "\n\n" + error.traceback.rstrip("\n")
    if error.cause is not None:
        text += "\n\nCaused by:\n" + describe_error(error.cause)
    return text
