"""How outputs pass between steps: in memory within a process, pickled files across processes and runs.

An IO manager belongs to one run. Steps' outputs are stored under (step key,
output name); an asset step's output is also recorded as the latest value of
its asset key, which is what asset jobs load for upstream assets they do not
select. A run re-executed from a parent reads the outputs of reused steps
from the parent run.
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from runtime.errors import ExecutionError


class OutputNotFoundError(ExecutionError, LookupError):
    """No stored value for the step output or asset asked for; the message says which and where."""


class IOManager(Protocol):
    """Stores and loads step outputs for one run. Methods may be called from worker threads.

    `blocking` says whether store and load may block (file or network I/O):
    the executor then calls them from a worker thread instead of the event loop.
    """

    blocking: bool

    def store(
        self, step_key: str, output_name: str, value: Any, *, asset_key: str | None = None
    ) -> None:
        """Keep `value` as the output of a step (and as the latest value of `asset_key`)."""
        ...

    def load(self, step_key: str, output_name: str) -> Any:
        """Return a stored output; raises OutputNotFoundError if there is none."""
        ...

    def load_asset(self, asset_key: str) -> Any:
        """Return the latest stored value of an asset; raises OutputNotFoundError if there is none."""
        ...

    def flush(self) -> list[str]:
        """Make every stored output durable before the run ends; return what failed, as sentences.

        Called once from a worker thread after the last step.
        """
        ...


class InMemoryIOManager:
    """Keeps outputs in dictionaries; the default within one process.

    Pass `assets` (a dict shared between runs, or values seeded by a test) to
    make upstream asset values available to asset jobs that do not select them.
    """

    # The executor calls it on the event loop: it never blocks.
    blocking = False

    def __init__(self, assets: dict[str, Any] | None = None) -> None:
        self.outputs: dict[tuple[str, str], Any] = {}
        self.assets: dict[str, Any] = assets if assets is not None else {}

    def store(
        self, step_key: str, output_name: str, value: Any, *, asset_key: str | None = None
    ) -> None:
        self.outputs[step_key, output_name] = value
        if asset_key is not None:
            self.assets[asset_key] = value

    def load(self, step_key: str, output_name: str) -> Any:
        try:
            return self.outputs[step_key, output_name]
        except KeyError:
            raise OutputNotFoundError(
                f"No output {output_name!r} of step {step_key!r} is held in memory for this run."
            ) from None

    def load_asset(self, asset_key: str) -> Any:
        try:
            return self.assets[asset_key]
        except KeyError:
            raise OutputNotFoundError(
                f"Asset {asset_key!r} has no value in memory: materialize it in this run or seed it."
            ) from None

    def flush(self) -> list[str]:
        return []


class FilesystemIOManager:
    """Pickles outputs to `<base_dir>/<run_id>/<step_key>/<output>.pickle`.

    The latest value of each asset is kept at `<base_dir>/assets/<asset_key>.pickle`
    (a hard link to the run's file when the filesystem allows). With
    `parent_run_id`, an output missing from this run is read from the parent
    run and linked into this run's directory, so a chain of re-executions
    always finds it one level up. Files are written to a temporary name and
    renamed, so a reader never sees half a pickle.
    """

    # File I/O: the executor calls it from a worker thread.
    blocking = True

    def __init__(
        self, base_dir: str | os.PathLike[str], run_id: str, *, parent_run_id: str | None = None
    ) -> None:
        self.base_dir = Path(base_dir)
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self._made_dirs: set[Path] = set()
        self._lock = threading.Lock()

    def output_path(self, step_key: str, output_name: str, run_id: str | None = None) -> Path:
        """Where an output of a step of `run_id` (this run by default) is stored."""
        return (
            self.base_dir
            / _safe(run_id or self.run_id)
            / _safe(step_key)
            / f"{_safe(output_name)}.pickle"
        )

    def asset_path(self, asset_key: str) -> Path:
        """Where the latest value of an asset is stored."""
        return self.base_dir / "assets" / f"{_safe(asset_key)}.pickle"

    def store(
        self, step_key: str, output_name: str, value: Any, *, asset_key: str | None = None
    ) -> None:
        self.store_pickled(step_key, output_name, _pickle(value), asset_key=asset_key)

    def store_pickled(
        self, step_key: str, output_name: str, data: bytes, *, asset_key: str | None = None
    ) -> None:
        """Store an output already pickled."""
        path = self.output_path(step_key, output_name)
        self._write(path, data)
        if asset_key is not None:
            self._publish(path, self.asset_path(asset_key))

    def flush(self) -> list[str]:
        # Every store was written before it returned.
        return []

    def load(self, step_key: str, output_name: str) -> Any:
        path = self.output_path(step_key, output_name)
        if not path.exists() and self.parent_run_id is not None:
            parent_path = self.output_path(step_key, output_name, self.parent_run_id)
            if parent_path.exists():
                self._publish(parent_path, path)
        try:
            return self._read(path)
        except FileNotFoundError:
            where = f"{path}" + (
                f" nor in parent run {self.parent_run_id!r}" if self.parent_run_id else ""
            )
            raise OutputNotFoundError(
                f"No stored output {output_name!r} of step {step_key!r}: nothing at {where}."
            ) from None

    def load_asset(self, asset_key: str) -> Any:
        path = self.asset_path(asset_key)
        try:
            return self._read(path)
        except FileNotFoundError:
            raise OutputNotFoundError(
                f"Asset {asset_key!r} was never materialized with this storage: nothing at {path}."
            ) from None

    def _read(self, path: Path) -> Any:
        with path.open("rb") as file:
            return pickle.load(file)

    def _ensure_dir(self, directory: Path) -> None:
        if directory not in self._made_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._made_dirs.add(directory)

    def _write(self, path: Path, data: bytes) -> None:
        self._ensure_dir(path.parent)
        # Unique per process and thread, so concurrent writers never share one;
        # cheaper than mkstemp, which matters at thousands of outputs per run.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as file:
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _publish(self, source: Path, target: Path) -> None:
        """Make `target` hold what `source` holds: a hard link when possible, else a copy."""
        self._ensure_dir(target.parent)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            os.link(source, tmp)
        except OSError:
            self._write(target, source.read_bytes())
            return
        os.replace(tmp, target)


class WriteBehindIOManager:
    """Outputs in memory for this run's steps, and pickled to a FilesystemIOManager in the background.

    Downstream steps read the value from memory at once; the files exist for
    a later re-execution of the run. Values are pickled when stored (so a step
    that mutates its input later cannot change what was persisted) and
    written by one background thread; `flush()` waits for the writes. An
    output missing from memory (a reused step's) is read from the files.
    """

    # Memory on the hot path; only stored inputs read files (the executor
    # loads those from a worker thread).
    blocking = False

    def __init__(self, filesystem: FilesystemIOManager) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.filesystem = filesystem
        self.memory = InMemoryIOManager()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runtime-io-writer")
        self._failures: list[str] = []

    def store(
        self, step_key: str, output_name: str, value: Any, *, asset_key: str | None = None
    ) -> None:
        self.memory.store(step_key, output_name, value, asset_key=asset_key)
        data = _pickle(value)
        self._writer.submit(self._write, step_key, output_name, data, asset_key)

    def _write(self, step_key: str, output_name: str, data: bytes, asset_key: str | None) -> None:
        try:
            self.filesystem.store_pickled(step_key, output_name, data, asset_key=asset_key)
        except Exception as exc:
            self._failures.append(
                f"Output {output_name!r} of step {step_key!r} could not be written under "
                f"{self.filesystem.base_dir}: {type(exc).__name__}: {exc}"
            )

    def load(self, step_key: str, output_name: str) -> Any:
        try:
            return self.memory.load(step_key, output_name)
        except OutputNotFoundError:
            return self.filesystem.load(step_key, output_name)

    def load_asset(self, asset_key: str) -> Any:
        try:
            return self.memory.load_asset(asset_key)
        except OutputNotFoundError:
            return self.filesystem.load_asset(asset_key)

    def flush(self) -> list[str]:
        """Wait for every pending write; return the ones that failed. The writer stops."""
        self._writer.shutdown(wait=True)
        return list(self._failures)


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _safe(name: str) -> str:
    # Asset keys may hold "/" and step keys other odd characters: one path segment each.
    return quote(name, safe="-_") or "_"
