"""FsspecIOManager: step outputs as pickle files under any fsspec URL, readable from every process.

For executors whose steps run in other processes or on other machines (the
dask executor): the code location and every worker open the same URL, a
shared folder (`/mnt/shared/runtime`) or an object store (`s3://bucket/runs`,
`gcs://...`; `memory://` within one process). A run's outputs live at
`<url>/<run_id>/<step_key>.<output>.pickle`, one object per output, since
writers on different machines cannot share one append-only log; the latest
value of an asset at `<url>/assets/<asset_key>.pickle`, the same place and
format as FilesystemIOManager's, so either reads what the other materialized.
With `parent_run_id`, an output missing from this run is read from the
parent's and copied into this run's, so a chain of re-executions finds it one
level up. Needs fsspec (`pip install 'runtime[dask]'`).
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import fsspec
import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from runtime.execution.io_manager import OutputNotFoundError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


@dataclass(frozen=True, slots=True)
class FsspecLocation:
    """Where one run's outputs live; small and picklable, so a worker can open the same place."""

    url: str
    run_id: str
    parent_run_id: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> FsspecIOManager:
        """An FsspecIOManager over this location."""
        return FsspecIOManager(
            self.url,
            self.run_id,
            parent_run_id=self.parent_run_id,
            storage_options=self.storage_options,
        )


class FsspecIOManager:
    """Keeps each output of a run as a pickle file under an fsspec URL (see the module docstring).

    Raises ValueError at construction for a URL fsspec cannot open (an
    unknown protocol, a missing filesystem package), naming the URL.
    """

    # File or network I/O: the executor calls it from worker threads.
    blocking = True

    def __init__(
        self,
        url: str | os.PathLike[str],
        run_id: str,
        *,
        parent_run_id: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.location = FsspecLocation(
            url=os.fspath(url),
            run_id=run_id,
            parent_run_id=parent_run_id,
            storage_options=dict(storage_options or {}),
        )
        self.fs, self.root = _open_url(self.location.url, self.location.storage_options)
        self._local = isinstance(self.fs, LocalFileSystem)
        self._made_dirs: set[str] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def run_id(self) -> str:
        return self.location.run_id

    def output_path(self, step_key: str, output_name: str, run_id: str | None = None) -> str:
        """The path (inside the filesystem) of one output of `run_id` (this run by default)."""
        run = _segment(run_id or self.run_id)
        return f"{self.root}/{run}/{_segment(step_key)}.{_segment(output_name)}.pickle"

    def asset_path(self, asset_key: str) -> str:
        """Where the latest value of an asset is stored."""
        # Named as FilesystemIOManager names it.
        return f"{self.root}/assets/{quote(asset_key, safe='-_') or '_'}.pickle"

    def store(
        self, step_key: str, output_name: str, value: Any, *, asset_key: str | None = None
    ) -> None:
        self.store_pickled(step_key, output_name, pickle_value(value), asset_key=asset_key)

    def store_pickled(
        self, step_key: str, output_name: str, data: bytes, *, asset_key: str | None = None
    ) -> None:
        """Store an output already pickled (and as the latest value of `asset_key`)."""
        self._write(self.output_path(step_key, output_name), data)
        if asset_key is not None:
            self._write(self.asset_path(asset_key), data)

    def load(self, step_key: str, output_name: str) -> Any:
        return pickle.loads(self.load_pickled(step_key, output_name))

    def load_pickled(self, step_key: str, output_name: str) -> bytes:
        """The pickled bytes of a stored output; raises OutputNotFoundError if there is none."""
        path = self.output_path(step_key, output_name)
        data = self._read(path)
        if data is not None:
            return data
        parent = self.location.parent_run_id
        if parent is not None:
            data = self._read(self.output_path(step_key, output_name, parent))
            if data is not None:
                # Kept in this run's outputs too, for a re-execution of this run.
                self._write(path, data)
                return data
        where = f"{self.url} (run {self.run_id!r}" + (
            f" nor its parent run {parent!r})" if parent is not None else ")"
        )
        raise OutputNotFoundError(
            f"No stored output {output_name!r} of step {step_key!r}: not in {where}."
        )

    def load_asset(self, asset_key: str) -> Any:
        data = self._read(self.asset_path(asset_key))
        if data is None:
            raise OutputNotFoundError(
                f"Asset {asset_key!r} was never materialized with this storage: nothing at "
                f"{self.asset_path(asset_key)} of {self.url}."
            )
        return pickle.loads(data)

    def flush(self) -> list[str]:
        # Every store wrote its file before returning.
        return []

    def _read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data

    def _write(self, path: str, data: bytes) -> None:
        folder = path.rsplit("/", 1)[0]
        if folder not in self._made_dirs:
            self.fs.makedirs(folder, exist_ok=True)
            with self._lock:
                self._made_dirs.add(folder)
        if self._local:
            # Written under a temporary name and renamed: a reader in another
            # process never sees half a file. Object stores write whole objects.
            tmp = f"{folder}/.{uuid.uuid4().hex}.tmp"
            try:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
            except BaseException:
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)
                raise
        else:
            self.fs.pipe_file(path, data)


def pickle_value(value: Any) -> bytes:
    """Pickle an output the way every IO manager of this package does."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _open_url(url: str, storage_options: dict[str, Any]) -> tuple[AbstractFileSystem, str]:
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"Cannot open the output storage {url!r}: {exc}") from None
    return fs, str(root).rstrip("/") or "/"


def _segment(name: str) -> str:
    # Step keys may hold odd characters: one path segment each, and no "." so
    # that "<step>.<output>" names one output only.
    return quote(name, safe="-_").replace(".", "%2E") or "_"
