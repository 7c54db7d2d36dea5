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
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from runtime.errors import ExecutionError
from runtime.execution.private_files import (
    check_private_file,
    make_private_dirs,
    open_private,
)

if TYPE_CHECKING:
    from io import BufferedWriter


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
    """Keeps a run's outputs in one append-only log, `<base_dir>/<run_id>/outputs.log`.

    Each record is a length-prefixed (step key, output name, pickled value);
    a later record for the same output wins, and a torn last record (a
    process killed mid-write) is ignored. One log per run instead of a file
    per output: a step then costs one buffered write, not a directory, a file
    and a rename (that was 85% of a launched run's time on a slow disk). The
    latest value of each asset is a file of its own,
    `<base_dir>/assets/<asset_key>.pickle`, written to a temporary name and
    renamed, for later runs that load it. With `parent_run_id`, an output
    missing from this run is read from the parent's log and appended to this
    run's, so a chain of re-executions always finds it one level up.

    Everything under `base_dir` is private: directories 0700, files 0600, and
    a file is unpickled only if it and every directory up to `base_dir`
    belong to this user and no one else may write them (UntrustedFileError,
    naming the path, otherwise).
    """

    # File I/O: the executor calls it from a worker thread.
    blocking = True

    def __init__(
        self, base_dir: str | os.PathLike[str], run_id: str, *, parent_run_id: str | None = None
    ) -> None:
        self.base_dir = Path(base_dir)
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self._lock = threading.Lock()
        self._log: BufferedWriter | None = None
        # (step key, output name) -> (offset, length) of the pickled value in a log.
        self._index: dict[tuple[str, str], tuple[int, int]] = {}
        self._parent_index: dict[tuple[str, str], tuple[int, int]] | None = None
        # Whether what an earlier manager left in this run's log is indexed.
        self._own_log_read = False
        # Logs checked private to this user (see check_private_file), and
        # directories made private, once each.
        self._checked: set[Path] = set()
        self._private_dirs: set[Path] = set()

    def log_path(self, run_id: str | None = None) -> Path:
        """The output log of `run_id` (this run by default)."""
        return self.base_dir / _safe(run_id or self.run_id) / "outputs.log"

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
        with self._lock:
            self._append(step_key, output_name, data)
        if asset_key is not None:
            path = self.asset_path(asset_key)
            with self._lock:
                self._make_private_dir(path.parent)
            _write_atomically(path, data)

    def flush(self) -> list[str]:
        """Push what was appended to the operating system and close the log."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
        return []

    def load(self, step_key: str, output_name: str) -> Any:
        key = (step_key, output_name)
        with self._lock:
            self._check_log(self.log_path())
            self._read_own_log()
            found = self._index.get(key)
            if found is not None:
                if self._log is not None:
                    self._log.flush()
                return pickle.loads(_read_at(self.log_path(), *found))
            if self.parent_run_id is not None:
                self._check_log(self.log_path(self.parent_run_id))
                parent = self._parent_entries().get(key)
                if parent is not None:
                    data = _read_at(self.log_path(self.parent_run_id), *parent)
                    # Kept in this run's log too, for a re-execution of this run.
                    was_open = self._log is not None
                    self._append(step_key, output_name, data)
                    if not was_open and self._log is not None:
                        self._log.close()
                        self._log = None
                    return pickle.loads(data)
        where = f"{self.log_path()}" + (
            f" nor in parent run {self.parent_run_id!r}" if self.parent_run_id else ""
        )
        raise OutputNotFoundError(
            f"No stored output {output_name!r} of step {step_key!r}: not in {where}."
        )

    def load_asset(self, asset_key: str) -> Any:
        path = self.asset_path(asset_key)
        try:
            if not check_private_file(path, self.base_dir):
                raise FileNotFoundError(path)
            with path.open("rb") as file:
                return pickle.load(file)
        except FileNotFoundError:
            raise OutputNotFoundError(
                f"Asset {asset_key!r} was never materialized with this storage: nothing at {path}."
            ) from None

    def _make_private_dir(self, directory: Path) -> None:
        # Called with the lock held: create (0700) and check the directory once.
        if directory not in self._private_dirs:
            make_private_dirs(directory, self.base_dir)
            self._private_dirs.add(directory)

    def _check_log(self, path: Path) -> None:
        # Called with the lock held; raises UntrustedFileError for a log others could write.
        if path not in self._checked and check_private_file(path, self.base_dir):
            self._checked.add(path)

    def _append(self, step_key: str, output_name: str, data: bytes) -> None:
        # Called with the lock held.
        if self._log is None:
            path = self.log_path()
            self._make_private_dir(path.parent)
            self._log = os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab")
            # Outputs stored before a restart of this manager stay readable.
            self._index.update(_read_index(path))
        key = step_key.encode(), output_name.encode()
        header = _HEADER.pack(len(key[0]), len(key[1]), len(data))
        start = self._log.tell()
        self._log.write(b"".join((header, *key, data)))
        self._index[step_key, output_name] = (
            start + len(header) + len(key[0]) + len(key[1]),
            len(data),
        )

    def _read_own_log(self) -> None:
        # Called with the lock held: index what an earlier manager of this run
        # stored, once; later records (ours) then win.
        if not self._own_log_read:
            self._own_log_read = True
            self._index = {**_read_index(self.log_path()), **self._index}

    def _parent_entries(self) -> dict[tuple[str, str], tuple[int, int]]:
        if self._parent_index is None:
            assert self.parent_run_id is not None
            self._parent_index = _read_index(self.log_path(self.parent_run_id))
        return self._parent_index


# A record: lengths of the step key, the output name and the pickled value.
_HEADER = struct.Struct("<HHQ")


def _read_index(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(step key, output name) -> (offset, length) of every whole record of a log."""
    index: dict[tuple[str, str], tuple[int, int]] = {}
    try:
        with path.open("rb") as file:
            blob = file.read()
    except FileNotFoundError:
        return index
    at = 0
    while at + _HEADER.size <= len(blob):
        key_len, name_len, data_len = _HEADER.unpack_from(blob, at)
        start = at + _HEADER.size + key_len + name_len
        if start + data_len > len(blob):
            break  # torn last record
        key = blob[at + _HEADER.size : at + _HEADER.size + key_len].decode()
        name = blob[at + _HEADER.size + key_len : start].decode()
        index[key, name] = (start, data_len)
        at = start + data_len
    return index


def _read_at(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` (0600; its directory exists) through a temporary name, so a
    reader never sees half of it."""
    # Unique per process and thread, so concurrent writers never share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class WriteBehindIOManager:
    """Outputs in memory for this run's steps, and pickled to a FilesystemIOManager in the background.

    Downstream steps read the value from memory at once; the files exist for
    a later re-execution of the run. Values are pickled when stored (so a step
    that mutates its input later cannot change what was persisted) and
    written by one background thread; `flush()` waits for the writes. An
    output missing from memory (a reused step's) is read from the files. An
    output that cannot be pickled still passes on in memory; `flush()` names it
    among the failures instead of failing the step.
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
        try:
            data = _pickle(value)
        except Exception as exc:
            # Pickling fails on values such as locks, sockets or local functions
            # (TypeError, AttributeError, PicklingError...). Downstream steps of
            # this run use the value in memory, so the step still succeeds; only a
            # later re-execution loses it, which flush() reports.
            self._failures.append(
                f"Output {output_name!r} of step {step_key!r} was passed on in memory but could "
                f"not be saved for re-execution: {type(exc).__name__}: {exc}"
            )
            return
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
        try:
            self._failures.extend(self.filesystem.flush())
        except OSError as exc:
            self._failures.append(
                f"The outputs under {self.filesystem.base_dir} could not be saved: {exc}"
            )
        return list(self._failures)


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _safe(name: str) -> str:
    # Asset keys may hold "/" and step keys other odd characters: one path segment each.
    return quote(name, safe="-_") or "_"
