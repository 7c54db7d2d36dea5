"""The load status file: import progress a code server shares with its supervisor before it listens.

A supervisor passes `--load-status-file PATH`; while user code imports, the
server rewrites it (atomically) with LoadTimings: seconds so far, the slowest
modules, and the module being imported now. When a start-up deadline expires
the supervisor reads it and can say what the location was stuck on.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from runtime.protocol.messages import LoadTimings

_decoder = msgspec.json.Decoder(LoadTimings)


def write_load_status(path: str | os.PathLike[str], timings: LoadTimings) -> None:
    """Replace the status file's content with timings, atomically (write, then rename)."""
    target = Path(path)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    scratch.write_bytes(msgspec.json.encode(timings))
    os.replace(scratch, target)


def read_load_status(path: str | os.PathLike[str]) -> LoadTimings | None:
    """The last status written to path, or None when there is none (yet) or it is unreadable."""
    try:
        return _decoder.decode(Path(path).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
