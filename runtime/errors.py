"""The exception hierarchy: one root, a subclass per category.

Misuse raises (an unknown job, a malformed workspace.yaml); expected failures
of user code (a step that raised) are data in events and statuses instead.
Timeouts raise the builtin TimeoutError. Messages are sentences that name the
offending file, line, key, location or job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.protocol.messages import ErrorInfo


class RuntimeFrameworkError(Exception):
    """Root of every error this package raises on purpose."""


class DefinitionError(RuntimeFrameworkError):
    """User code defined something invalid: a cycle, an unknown dependency, a duplicate name."""


class ConfigError(RuntimeFrameworkError):
    """A configuration file or value is invalid; the message names file, line and key."""


class WorkspaceConfigError(ConfigError):
    """workspace.yaml (or its command-line equivalent) is invalid."""


class InstanceConfigError(ConfigError):
    """instance.yaml is invalid."""


class RunConfigError(ConfigError):
    """Run config does not match what a job's steps accept; names the path of the bad value."""


class LoadError(RuntimeFrameworkError):
    """User code could not be loaded into Definitions."""

    def __init__(self, message: str, *, hints: list[str] | None = None) -> None:
        super().__init__(message)
        self.hints: list[str] = hints or []


class ProtocolError(RuntimeFrameworkError):
    """The host and a code server could not understand each other."""


class ProtocolVersionError(ProtocolError):
    """Host and code server speak different protocol versions."""


class CodeLocationError(RuntimeFrameworkError):
    """A code location is unknown, unreachable, or in error."""

    def __init__(self, message: str, *, error: ErrorInfo | None = None) -> None:
        super().__init__(message)
        self.error = error


class UnknownJobError(RuntimeFrameworkError):
    """No job by that name in the location (or the workspace); the message lists those that exist."""


class UnknownDefinitionError(RuntimeFrameworkError):
    """No schedule or sensor by that name in the repository; the message lists those that exist."""


class RunNotFoundError(RuntimeFrameworkError):
    """No run with that id in the instance's storage."""


class StorageError(RuntimeFrameworkError):
    """The instance's storage failed or holds data this version cannot read."""


class StorageUnavailableError(StorageError):
    """The storage's server stayed unreachable for longer than its retry window; the same
    work may succeed once it is back (nothing of the failed call was stored)."""


class StepSelectionError(RuntimeFrameworkError):
    """A step selection or re-execution names steps the job does not have; the message lists those it has."""


class ExecutionError(RuntimeFrameworkError):
    """The engine could not run a step as asked: a stored output is missing, the run was canceled."""
