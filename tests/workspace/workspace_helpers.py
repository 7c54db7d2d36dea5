"""Helpers shared by the workspace supervision tests (imported by name: tests have no packages)."""

from __future__ import annotations

import textwrap
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from anyio.abc import Process

HELLO = """
from runtime import Definitions, asset, job, op

@asset
def numbers() -> list[int]:
    return [1, 2, 3]

@asset
async def total(numbers: list[int]) -> int:
    return sum(numbers)

@op
def say() -> str:
    return "hello"

@job
def greet():
    say()

defs = Definitions(assets=[numbers, total], jobs=[greet])
"""


def user_code(directory: Path, filename: str, source: str) -> Path:
    """Write a user-code file (dedented) and return its path."""
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def is_running(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until every pid is gone; return those still running after timeout."""
    deadline = time.monotonic() + timeout
    remaining = [pid for pid in pids if is_running(pid)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = [pid for pid in remaining if is_running(pid)]
    return remaining


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains text."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


async def eventually(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until predicate() is true; fail the test after `seconds`."""
    import anyio

    with anyio.fail_after(seconds):
        # Polls state with no event to wait on (log records, the process table).
        while not predicate():
            await anyio.sleep(0.05)


class StandaloneServer:
    """A `runtime api grpc` process started by a test, as a grpc_server location would be."""

    def __init__(self, process: Process, ready: dict[str, Any], auth_token: str | None) -> None:
        self.process = process
        # The server's token, by environment; grpc_server specs pass it as auth_token.
        self.auth_token = auth_token
        self.address: str = ready["address"]
        self.pid: int = ready["pid"]
        self.server_id: str = ready["server_id"]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


@asynccontextmanager
async def standalone_server(*args: str) -> AsyncIterator[StandaloneServer]:
    """Start `python -m runtime api grpc ARGS...`, wait for its ready line, always kill it.

    A server on a --port gets a fresh token in its environment (`server.auth_token`).
    """
    import json
    import os
    import secrets
    import subprocess
    import sys

    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    from runtime.protocol.auth import TOKEN_ENV_VAR

    token = secrets.token_urlsafe(16) if "--port" in args else None
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV_VAR}
    process = await anyio.open_process(
        [sys.executable, "-m", "runtime", "api", "grpc", *args],
        stdin=subprocess.DEVNULL,
        stderr=None,
        env={**env, TOKEN_ENV_VAR: token} if token else env,
    )
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(20):
            while True:
                line = (await lines.receive_until(b"\n", 1 << 20)).decode()
                if line.startswith("RUNTIME_CODE_SERVER_READY "):
                    break
        yield StandaloneServer(process, json.loads(line.partition(" ")[2]), token)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def still_running_after(pids: Iterable[int], seconds: float) -> list[int]:
    """Wait (without blocking the event loop) until every pid is gone; return those still running."""
    import anyio

    remaining = [pid for pid in pids if is_running(pid)]
    with anyio.move_on_after(seconds):
        while remaining:
            await anyio.sleep(0.05)
            remaining = [pid for pid in remaining if is_running(pid)]
    return remaining
