"""The dask executor's options (`executor: {kind: dask, dask: {...}}`), checked without importing Dask.

The code server checks them when a run is launched (ValidateRun) and again
before RUN_START; importing Dask is left to the runner, when a run uses it.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runtime.execution.executors import RunOutputs
    from runtime.execution.io_manager import IOManager

INSTALL_HINT = "pip install 'runtime[dask]'"

# Outputs up to this many pickled bytes travel back with the task's result
# (and on to the steps that read them) besides being stored.
DEFAULT_INLINE_BYTES = 64 * 1024


class DaskOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a run's steps go: an existing scheduler, or a LocalCluster started for the run.

    `io_url` is where outputs are stored (a path or any fsspec URL the code
    location and the workers can both reach; default: the instance's storage
    folder), with `io_options` as fsspec storage options.
    """

    scheduler_address: str | None = None
    # The LocalCluster started when there is no scheduler_address (None: Dask's default).
    n_workers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    threads_per_worker: Annotated[int, msgspec.Meta(ge=1)] | None = None
    processes: bool = True
    # Seconds to reach the scheduler before the run fails.
    connect_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    io_url: str | None = None
    io_options: dict[str, Any] = {}
    inline_bytes: Annotated[int, msgspec.Meta(ge=0)] = DEFAULT_INLINE_BYTES

    @property
    def local(self) -> bool:
        """True when the run starts its own LocalCluster."""
        return self.scheduler_address is None


_OPTION_NAMES = tuple(DaskOptions.__struct_fields__)
_LOCAL_ONLY = ("n_workers", "threads_per_worker", "processes")
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")


def dask_installed() -> bool:
    """Whether dask.distributed and fsspec can be imported here."""
    return all(importlib.util.find_spec(name) is not None for name in ("distributed", "fsspec"))


def parse_options(options: Mapping[str, Any]) -> DaskOptions:
    """The options as a DaskOptions; raises ValueError naming the option that is wrong."""
    try:
        parsed = msgspec.convert(dict(options), DaskOptions)
    except msgspec.ValidationError as exc:
        raise ValueError(_option_problem(str(exc))) from None
    if not parsed.local:
        given = [name for name in _LOCAL_ONLY if name in options]
        if given:
            raise ValueError(
                f"option {given[0]!r} sizes the LocalCluster started when there is no "
                f"scheduler_address; it does not apply to the scheduler at "
                f"{parsed.scheduler_address}"
            )
        if not re.match(r"^[a-z][a-z0-9+.-]*://", parsed.scheduler_address or ""):
            raise ValueError(
                f"option 'scheduler_address' must be an address such as tcp://host:8786, "
                f"got {parsed.scheduler_address!r}"
            )
    return parsed


def check_options(options: Mapping[str, Any]) -> None:
    """The executor registry's check: the options are valid and Dask is installed here.

    Raises ValueError with a sentence fragment (the registry names the
    executor and the run before it).
    """
    parsed = parse_options(options)
    if not dask_installed():
        raise ValueError(
            f"it needs Dask (dask.distributed and fsspec), which is not installed in the code "
            f"location's environment: {INSTALL_HINT}"
        )
    if parsed.io_url is not None:
        _check_url(parsed.io_url)


def run_io_manager(outputs: RunOutputs) -> IOManager:
    """The IO manager of a launched dask run: files under `io_url`, else the instance's storage.

    Without either (a run executed with no storage), outputs stay in memory
    here and the runner keeps the workers' copies in a folder of its own.
    """
    from runtime.execution.io_manager import InMemoryIOManager

    options = parse_options(outputs.options)
    url = options.io_url or outputs.storage_dir
    if url is None:
        return InMemoryIOManager()
    from runtime.execution.fsspec_io import FsspecIOManager

    return FsspecIOManager(
        url,
        outputs.run_id,
        parent_run_id=outputs.parent_run_id,
        storage_options=options.io_options,
    )


def _check_url(url: str) -> None:
    """Raise ValueError unless fsspec knows the URL's protocol and its package is installed."""
    import fsspec
    import fsspec.core

    protocol, _ = fsspec.core.split_protocol(url)
    try:
        fsspec.get_filesystem_class(protocol or "file")
    except (ImportError, ValueError) as exc:
        raise ValueError(f"option 'io_url' {url!r} cannot be opened: {exc}") from None


def _option_problem(text: str) -> str:
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        name = unknown.group("name")
        close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown option {name!r}{hint}; the options are: {', '.join(_OPTION_NAMES)}"
    match = _AT_PATH.search(text)
    if match is None:
        return f"its options are invalid: {text}"
    reason = text[: match.start()]
    return f"option {match.group('path')!r}: {reason}"
