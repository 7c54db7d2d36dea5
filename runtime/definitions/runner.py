"""The in-process runner behind `JobDefinition.execute_in_process`, provided from above.

The definitions are plain data and import nothing of the engine, yet Dagster's
API puts `execute_in_process()` on the job. The engine's runner
(runtime.execution.in_process) is therefore handed in by the package facade,
runtime/__init__.py, which sits above both layers and runs before any module
of the package (Python imports a package before its submodules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Protocol

    from runtime.definitions.graph import JobDefinition
    from runtime.execution.in_process import ExecuteInProcessResult

    # Only for type checkers: `import runtime` runs this module and stays light.
    class InProcessRunner(Protocol):
        """Runs a job here and now; the signature of execute_job_in_process."""

        def __call__(
            self,
            job: JobDefinition,
            run_config: Mapping[str, Any] | None = None,
            resources: Mapping[str, Any] | None = None,
            raise_on_error: bool = True,
            **options: Any,
        ) -> ExecuteInProcessResult: ...


class _Slot:
    # One per process, set once at import by the facade: a constant, not state.
    runner: InProcessRunner | None = None


def provide_in_process_runner(runner: InProcessRunner) -> None:
    """Install the function that `JobDefinition.execute_in_process` calls."""
    _Slot.runner = runner


def in_process_runner() -> InProcessRunner:
    """The installed runner; raises ExecutionError if none was (runtime/__init__.py installs it)."""
    runner = _Slot.runner
    if runner is None:
        from runtime.errors import ExecutionError

        raise ExecutionError(
            "No in-process runner is installed; import the `runtime` package "
            "(it installs runtime.execution.in_process) before calling execute_in_process()."
        )
    return runner
