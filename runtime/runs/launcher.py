"""RunLauncher: where a launched run executes, as a Protocol with a registry.

A launcher hands the run driver a connection to a code server that will
execute the run: the location's own server (`in_process`, the default), a
fresh process per run (`run_worker`), or whatever a new module registers.
Adding one is a module with a class and a `register_launcher` call; nothing
else names the launchers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from runtime.errors import CodeLocationError

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from runtime.process.code_server import CodeServerProcess
    from runtime.process.options import CodeServerOptions
    from runtime.protocol.client import CodeLocationClient
    from runtime.workspace.location import CodeLocation


@dataclass(frozen=True, eq=False)
class ServerConnection:
    """What a driver needs from a code server: its client and, if the host owns it, its process."""

    client: CodeLocationClient
    process: CodeServerProcess | None
    # e.g. "the code server of location 'etl' (pid 123)"
    description: str


class RunLauncher(Protocol):
    """Provides the code server a run executes in."""

    def check(self, location: CodeLocation) -> None:
        """Raise CodeLocationError, before anything is stored, if runs of `location` cannot launch here."""
        ...

    def connect(self, location: CodeLocation) -> AbstractAsyncContextManager[ServerConnection]:
        """A code server for one run of `location`, kept for the block.

        Raises CodeLocationError when none can be had (a run worker that fails to load).
        """
        ...


_LAUNCHERS: dict[str, Callable[[CodeServerOptions], RunLauncher]] = {}


def register_launcher(name: str, factory: Callable[[CodeServerOptions], RunLauncher]) -> None:
    """Make a launcher available as `name` (instance.yaml `run_launcher: {<name>: {}}`, `launch_run(launcher=)`)."""
    _LAUNCHERS[name] = factory


def launcher_names() -> list[str]:
    """The names of the registered launchers."""
    _register_builtin()
    return sorted(_LAUNCHERS)


def build_launcher(name: str, options: CodeServerOptions) -> RunLauncher:
    """The launcher registered as `name`; raises CodeLocationError naming the known ones."""
    _register_builtin()
    factory = _LAUNCHERS.get(name)
    if factory is None:
        known = sorted(_LAUNCHERS)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CodeLocationError(
            f"There is no run launcher named {name!r}; the launchers are: {', '.join(known)}.{hint}"
        )
    return factory(options)


def _register_builtin() -> None:
    # Imported on first use: each module registers itself.
    import runtime.runs.in_location
    import runtime.runs.run_worker  # noqa: F401
