"""LocationSpec: one code location to load, however it was declared.

workspace.yaml entries, pyproject.toml's [tool.runtime] and command-line
targets are all parsed into these; the supervisor only ever sees LocationSpec.
Paths are absolute by the time a spec exists.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from runtime.process.target import CodeServerTarget
from runtime.protocol.auth import AuthToken

LocationKind = Literal["python_file", "python_module", "python_package", "grpc_server"]


class LocationSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: LocationKind
    python_file: str | None = None
    module_name: str | None = None
    package_name: str | None = None
    attribute: str | None = None
    working_directory: str | None = None
    # Interpreter for a managed location; None means the host's own.
    executable_path: str | None = None
    # grpc_server locations: exactly one of port and socket.
    host: str | None = None
    port: int | None = None
    socket: str | None = None
    ssl: bool = False
    # grpc_server locations: the server's shared secret, sent with every call;
    # None sends $RUNTIME_CODE_SERVER_TOKEN when that is set.
    auth_token: AuthToken | None = None
    # Where it was declared, for messages: "workspace.yaml line 4" or "command line".
    origin: str = ""

    @property
    def is_managed(self) -> bool:
        """True when the workspace starts and supervises this location's process."""
        return self.kind != "grpc_server"

    @property
    def address(self) -> str:
        """host:port or host:socket of a grpc_server location."""
        where = self.socket if self.socket is not None else str(self.port)
        return f"{self.host or '127.0.0.1'}:{where}"

    def code_server_target_args(self) -> list[str]:
        """The `runtime api grpc` flags that load this location's code."""
        args: list[str] = []
        if self.kind == "python_file" and self.python_file is not None:
            args += ["--python-file", self.python_file]
        elif self.kind == "python_module" and self.module_name is not None:
            args += ["--module-name", self.module_name]
        elif self.kind == "python_package" and self.package_name is not None:
            args += ["--package-name", self.package_name]
        else:
            raise ValueError(f"Location {self.name!r} of kind {self.kind} has no code target.")
        if self.attribute:
            args += ["--attribute", self.attribute]
        if self.working_directory:
            args += ["--working-directory", self.working_directory]
        args += ["--location-name", self.name]
        return args

    def code_server_target(self) -> CodeServerTarget:
        """What a code server process must load to serve this (managed) location."""
        return CodeServerTarget(
            name=self.name,
            target_args=tuple(self.code_server_target_args()),
            working_directory=self.working_directory,
            executable_path=self.executable_path,
        )
