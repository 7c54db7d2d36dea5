"""Turn an exception into ErrorInfo: the error as data that crosses the wire."""

from __future__ import annotations

import importlib
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.protocol.messages import ErrorInfo

if TYPE_CHECKING:
    from collections.abc import Callable

_RUNTIME_DIR = str(Path(__file__).resolve().parent.parent)
# The stdlib's import machinery: importlib/__init__.py and its frozen bootstrap.
_IMPORTLIB_DIR = str(Path(importlib.__file__).resolve().parent)


def is_import_machinery_frame(filename: str) -> bool:
    """True for frames of Python's import machinery (frozen or in importlib/)."""
    return filename.startswith(("<frozen importlib", _IMPORTLIB_DIR + "/"))


def is_runtime_frame(filename: str) -> bool:
    """True for frames of this package's own code."""
    return filename.startswith(_RUNTIME_DIR + "/")


def is_framework_frame(filename: str) -> bool:
    """True for frames of the import machinery and of this package.

    Users read tracebacks of their own code; the frames that led into it from
    here, and those of the check that rejected what they wrote, are noise.
    """
    return is_import_machinery_frame(filename) or is_runtime_frame(filename)


def format_user_traceback(
    exc: BaseException, *, hide: Callable[[str], bool] = is_framework_frame
) -> str:
    """The traceback of exc (with its causes) without the frames `hide` rejects.

    A user's mistake shows only the user's frames: none at all (an empty
    string) when the mistake has no frame of theirs, such as a module that is
    not installed. An error with no user frame that is not one of this
    package's errors is a bug of the runtime, so its own frames stay (the
    import machinery's still go).
    """
    from runtime.errors import RuntimeFrameworkError

    summary = traceback.TracebackException.from_exception(exc)
    chain: list[traceback.TracebackException] = []
    current: traceback.TracebackException | None = summary
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    users = any(not hide(frame.filename) for part in chain for frame in part.stack)
    if not users and not isinstance(exc, RuntimeFrameworkError | ImportError):
        hide = is_import_machinery_frame  # a bug here: keep the runtime's frames
    for part in chain:
        part.stack = traceback.StackSummary.from_list(
            [frame for frame in part.stack if not hide(frame.filename)]
        )
    if not any(part.stack for part in chain):
        return ""
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
