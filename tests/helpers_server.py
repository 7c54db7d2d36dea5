"""Start a real code server subprocess for a test, and always stop it.

    async with start_code_server("--python-file", str(path), "--port", "0") as server:
        async with server.client() as client:
            snapshot = await client.snapshot()

The server is `sys.executable -m runtime api grpc ARGS`; the helper waits for
its ready line, drains its stdout and stderr into `server.stdout` and
`server.stderr` (so user output can never block it), and on exit terminates
it, then kills it after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from runtime.protocol.client import CodeLocationClient
from runtime.protocol.ready_line import parse_ready_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from pathlib import Path

READY_TIMEOUT = 30.0
STOP_GRACE = 5.0


class CodeServerExitedError(RuntimeError):
    """The code server exited before printing its ready line."""


@dataclass
class ServerProcess:
    address: str
    pid: int
    server_id: str
    process: anyio.abc.Process
    # Everything the process wrote so far (decoded), minus nothing: the ready line is in stdout.
    stdout_lines: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def client(self) -> CodeLocationClient:
        """A client for this server (use it with `async with`)."""
        return CodeLocationClient.for_address(self.address)

    async def wait(self, *, limit: float = 10.0) -> int:
        """Wait up to `limit` seconds for the process to exit; returns its status (raises TimeoutError)."""
        with anyio.fail_after(limit):
            return await self.process.wait()


async def wait_until(
    condition: Callable[[], bool], *, limit: float, interval: float = 0.05
) -> None:
    """Poll condition (for state outside this process: files, /proc) until true; TimeoutError after limit."""
    with anyio.fail_after(limit):
        while True:
            if condition():
                return
            await anyio.sleep(interval)


def code_server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtime", "api", "grpc", *args]


async def _drain(stream: anyio.abc.ByteReceiveStream, lines: list[str]) -> None:
    buffer = b""
    async for data in stream:
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        lines.extend(line.decode(errors="replace") + "\n" for line in complete)
    if buffer:
        lines.append(buffer.decode(errors="replace"))


async def _stop(process: anyio.abc.Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with anyio.move_on_after(STOP_GRACE):
                await process.wait()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def start_code_server(
    *args: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> AsyncIterator[ServerProcess]:
    """Run `runtime api grpc *args` until the block exits; yields once it is listening.

    `env` entries are added to this process's environment. Raises
    CodeServerExitedError (with the server's stderr) when it exits before it
    is ready, and TimeoutError when it is not ready within ready_timeout.
    """
    full_env = {**os.environ, **(env or {})}
    process = await anyio.open_process(
        code_server_command(*args),
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        stdout_lines: list[str] = []
        stderr_lines: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, process.stderr, stderr_lines)
            ready = None
            buffer = b""
            with anyio.fail_after(ready_timeout):
                while ready is None:
                    try:
                        data = await process.stdout.receive()
                    except anyio.EndOfStream:
                        await process.wait()
                        await anyio.sleep(0.05)  # let the stderr drain catch up
                        raise CodeServerExitedError(
                            f"The code server exited with status {process.returncode} before it "
                            f"was ready; stderr:\n{''.join(stderr_lines)}"
                        ) from None
                    buffer += data
                    *complete, buffer = buffer.split(b"\n")
                    for raw in complete:
                        line = raw.decode(errors="replace") + "\n"
                        stdout_lines.append(line)
                        ready = ready or parse_ready_line(line)
            if buffer:
                stdout_lines.append(buffer.decode(errors="replace"))
            tg.start_soon(_drain, process.stdout, stdout_lines)
            yield ServerProcess(
                address=ready.address,
                pid=ready.pid,
                server_id=ready.server_id,
                process=process,
                stdout_lines=stdout_lines,
                stderr_lines=stderr_lines,
            )
            await _stop(process)
    finally:
        await _stop(process)
        await process.aclose()
