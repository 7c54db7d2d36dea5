"""Time the imports of one thread: which modules were slow, which one is running now.

An ImportRecorder installs a meta-path finder that delegates to the others and
marks the loaders it hands out (source, bytecode and extension modules) so
their `exec_module` is timed. Self time is attributed to the top-level package,
so the host can say "importing heavy_lib took 41 s". The cost is one extra
function call per module imported while recording, and nothing afterwards.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from importlib.machinery import ExtensionFileLoader, SourceFileLoader, SourcelessFileLoader
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# The recorder whose finder is installed; at most one at a time.
_active: ImportRecorder | None = None


def _timed_loader_class(base: type[Any]) -> type[Any]:
    """A subclass of a stdlib loader class whose exec_module reports to the active recorder."""

    def exec_module(self: Any, module: ModuleType) -> None:
        recorder = _active
        if recorder is None or not recorder.records_this_thread():
            base.exec_module(self, module)
            return
        with recorder.timed(module.__name__):
            base.exec_module(self, module)

    return type(
        f"Timed{base.__name__}", (base,), {"exec_module": exec_module, "__module__": __name__}
    )


# Only these exact classes are re-classed: they are plain Python classes with
# one instance per module, so swapping __class__ to a subclass is invisible to
# isinstance checks and affects no other module.
_TIMED_LOADERS: dict[type[Any], type[Any]] = {
    base: _timed_loader_class(base)
    for base in (SourceFileLoader, SourcelessFileLoader, ExtensionFileLoader)
}


@dataclass(frozen=True, slots=True)
class ModuleTime:
    """The self time spent importing one top-level package."""

    module: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ImportTimings:
    """What an ImportRecorder saw: import and total seconds, the slowest packages, the current import."""

    import_seconds: float = 0.0
    total_seconds: float = 0.0
    # Slowest first.
    slowest_modules: tuple[ModuleTime, ...] = ()
    # The module being imported when the timings were taken, if any.
    importing_module: str | None = None


class _Frame:
    __slots__ = ("child_seconds", "name", "started")

    def __init__(self, name: str, started: float) -> None:
        self.name = name
        self.started = started
        self.child_seconds = 0.0


class ImportRecorder:
    """Records the modules imported by the thread that calls `recording()`.

    `importing_module` may be read from any thread while the recording runs.
    """

    def __init__(self) -> None:
        self._thread_id: int | None = None
        self._stack: list[_Frame] = []
        # When the finder started looking for a module, so the time to find it
        # (and, for extensions, to create it) counts towards the module.
        self._find_started: dict[str, float] = {}
        self._self_seconds: dict[str, float] = {}
        self._started: float | None = None
        self._finished: float | None = None

    # --- reading -------------------------------------------------------------

    @property
    def importing_module(self) -> str | None:
        """The innermost module being imported right now, or None."""
        stack = self._stack
        try:
            return stack[-1].name
        except IndexError:
            return None

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since recording started, until it finished (0 before it started)."""
        if self._started is None:
            return 0.0
        end = self._finished if self._finished is not None else time.perf_counter()
        return end - self._started

    def slowest_modules(self, limit: int = 10) -> list[ModuleTime]:
        """Self time per top-level package, slowest first."""
        by_package: dict[str, float] = {}
        for name, seconds in list(self._self_seconds.items()):
            top = name.partition(".")[0]
            by_package[top] = by_package.get(top, 0.0) + seconds
        ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [ModuleTime(module=name, seconds=round(secs, 6)) for name, secs in ranked]

    def timings(self, *, total_seconds: float | None = None) -> ImportTimings:
        """What was recorded so far; `total_seconds` defaults to the import time."""
        import_seconds = self.elapsed_seconds
        return ImportTimings(
            import_seconds=round(import_seconds, 6),
            total_seconds=round(total_seconds if total_seconds is not None else import_seconds, 6),
            slowest_modules=tuple(self.slowest_modules()),
            importing_module=self.importing_module,
        )

    def records_this_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    # --- recording -------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self) -> Iterator[ImportRecorder]:
        """Install the finder and record this thread's imports until the block exits.

        Raises RuntimeError when another recorder is already recording.
        """
        global _active
        if _active is not None:
            raise RuntimeError("Another ImportRecorder is already recording imports.")
        self._thread_id = threading.get_ident()
        self._started = time.perf_counter()
        self._finished = None
        _active = self
        sys.meta_path.insert(0, self)
        try:
            yield self
        finally:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
            _active = None
            self._finished = time.perf_counter()
            self._find_started.clear()

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Attribute the time of the block (and of the finding before it) to module `name`."""
        started = self._find_started.pop(name, None) or time.perf_counter()
        frame = _Frame(name, started)
        self._stack.append(frame)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - frame.started
            self._stack.pop()
            self._self_seconds[name] = (
                self._self_seconds.get(name, 0.0) + elapsed - frame.child_seconds
            )
            if self._stack:
                self._stack[-1].child_seconds += elapsed

    # --- the meta-path finder protocol ----------------------------------------

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not self.records_this_thread():
            return None
        started = time.perf_counter()
        spec: ModuleSpec | None = None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            # Let the import machinery report (or handle) the missing module.
            return None
        timed_class = _TIMED_LOADERS.get(type(spec.loader))
        if timed_class is not None:
            spec.loader.__class__ = timed_class
            self._find_started[fullname] = started
        return spec

    def invalidate_caches(self) -> None:
        """Part of the finder protocol; the finders this one delegates to keep the caches."""
