"""runtime: load data-pipeline code locations into supervised code servers and run their jobs.

The public names are re-exported lazily: `import runtime` costs almost nothing,
and a code server imports only what the user's definitions need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runtime.definitions.runner import provide_in_process_runner
from runtime.version import __version__

if TYPE_CHECKING:
    from runtime.daemon.daemon import Daemon
    from runtime.daemon.options import DaemonOptions
    from runtime.definitions.asset import asset
    from runtime.definitions.asset_job import define_asset_job
    from runtime.definitions.definitions import Definitions
    from runtime.definitions.graph import JobDefinition, OpDefinition
    from runtime.definitions.job import job
    from runtime.definitions.load_assets import load_assets_from_modules
    from runtime.definitions.op import op
    from runtime.definitions.repository import RepositoryDefinition, repository
    from runtime.definitions.retry import Backoff, Jitter, RetryPolicy, RetryRequested
    from runtime.definitions.run_request import RunRequest, SkipReason
    from runtime.definitions.schedule import ScheduleDefinition, schedule
    from runtime.definitions.sensor import SensorDefinition, SensorEvaluationContext, sensor
    from runtime.errors import (
        CodeLocationError,
        ConfigError,
        DefinitionError,
        LoadError,
        ProtocolVersionError,
        RunConfigError,
        RuntimeFrameworkError,
        UnknownJobError,
        WorkspaceConfigError,
    )
    from runtime.execution.context import StepContext
    from runtime.execution.in_process import materialize
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance

# Public name -> module that defines it. Resolved on first attribute access.
_EXPORTS: dict[str, str] = {
    "asset": "runtime.definitions.asset",
    "op": "runtime.definitions.op",
    "job": "runtime.definitions.job",
    "define_asset_job": "runtime.definitions.asset_job",
    "Definitions": "runtime.definitions.definitions",
    "JobDefinition": "runtime.definitions.graph",
    "OpDefinition": "runtime.definitions.graph",
    "repository": "runtime.definitions.repository",
    "RepositoryDefinition": "runtime.definitions.repository",
    "schedule": "runtime.definitions.schedule",
    "ScheduleDefinition": "runtime.definitions.schedule",
    "sensor": "runtime.definitions.sensor",
    "SensorDefinition": "runtime.definitions.sensor",
    "SensorEvaluationContext": "runtime.definitions.sensor",
    "RunRequest": "runtime.definitions.run_request",
    "SkipReason": "runtime.definitions.run_request",
    "RetryPolicy": "runtime.definitions.retry",
    "RetryRequested": "runtime.definitions.retry",
    "Backoff": "runtime.definitions.retry",
    "Jitter": "runtime.definitions.retry",
    "load_assets_from_modules": "runtime.definitions.load_assets",
    "StepContext": "runtime.execution.context",
    "materialize": "runtime.execution.in_process",
    "Workspace": "runtime.host.workspace",
    "Daemon": "runtime.daemon.daemon",
    "DaemonOptions": "runtime.daemon.options",
    "Instance": "runtime.instance.instance",
    "RuntimeFrameworkError": "runtime.errors",
    "DefinitionError": "runtime.errors",
    "ConfigError": "runtime.errors",
    "WorkspaceConfigError": "runtime.errors",
    "RunConfigError": "runtime.errors",
    "LoadError": "runtime.errors",
    "ProtocolVersionError": "runtime.errors",
    "CodeLocationError": "runtime.errors",
    "UnknownJobError": "runtime.errors",
}

__all__ = (
    "__version__",
    "asset",
    "op",
    "job",
    "define_asset_job",
    "Definitions",
    "JobDefinition",
    "OpDefinition",
    "repository",
    "RepositoryDefinition",
    "schedule",
    "ScheduleDefinition",
    "sensor",
    "SensorDefinition",
    "SensorEvaluationContext",
    "RunRequest",
    "SkipReason",
    "RetryPolicy",
    "RetryRequested",
    "Backoff",
    "Jitter",
    "load_assets_from_modules",
    "StepContext",
    "materialize",
    "Workspace",
    "Daemon",
    "DaemonOptions",
    "Instance",
    "RuntimeFrameworkError",
    "DefinitionError",
    "ConfigError",
    "WorkspaceConfigError",
    "RunConfigError",
    "LoadError",
    "ProtocolVersionError",
    "CodeLocationError",
    "UnknownJobError",
)


def _execute_job_in_process(*args: Any, **kwargs: Any) -> Any:
    # The facade composes the layers: the definitions reach the engine only
    # through this, and the engine is imported on the first in-process run.
    from runtime.execution.in_process import execute_job_in_process

    return execute_job_in_process(*args, **kwargs)


provide_in_process_runner(_execute_job_in_process)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
