"""CodeServerTarget: what a code server process loads and under which interpreter."""

from __future__ import annotations

import msgspec


class CodeServerTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The code of one location, as a code server process is told to load it.

    `target_args` are the `runtime api grpc` flags naming the code
    (`--python-file F --location-name N`, ...); `executable_path` None means
    the host's own interpreter.
    """

    name: str
    target_args: tuple[str, ...]
    working_directory: str | None = None
    executable_path: str | None = None
