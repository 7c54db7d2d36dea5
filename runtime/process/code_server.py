"""One managed code server: `runtime api grpc` spawned, watched, and stopped.

The process gets its own process group (so stopping it also stops whatever
user code spawned), a Unix socket in a private 0700 directory, the host's pid
for a parent-death signal, and a heartbeat timeout, so that nothing survives a
host killed with SIGKILL. Its stdout and stderr are read line by line and sent
to the `runtime.location.<name>` logger; the first thing it prints on stdout is
the ready line this module waits for.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from runtime.errors import CodeLocationError
from runtime.process.failure import LocationFailure
from runtime.protocol.ready_line import READY_MARKER, parse_ready_line

if TYPE_CHECKING:
    from anyio.abc import ByteReceiveStream, Process, TaskStatus

    from runtime.process.options import CodeServerOptions
    from runtime.process.target import CodeServerTarget

# A user's print without a newline must not grow a line without bound.
_MAX_LINE_BYTES = 64 * 1024
# Lines of stderr kept to explain a process that died.
_STDERR_TAIL_LINES = 60
# How long to keep reading output after the process exited (a grandchild that
# escaped the process group could otherwise hold the pipe open forever).
_DRAIN_SECONDS = 1.0


class CodeServerStartError(CodeLocationError):
    """The code server process exited or missed its deadline before it was ready."""

    def __init__(self, failure: LocationFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def describe_returncode(returncode: int) -> str:
    """'exited with code 3' or 'was killed by SIGABRT'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def code_server_command(
    target: CodeServerTarget, *, socket_path: str, load_status_path: str, options: CodeServerOptions
) -> list[str]:
    """The argv that starts this location's code server."""
    executable = target.executable_path or sys.executable
    return [
        executable,
        "-m",
        "runtime",
        "api",
        "grpc",
        *target.target_args,
        "--socket",
        socket_path,
        "--heartbeat",
        "--heartbeat-timeout",
        str(options.heartbeat_timeout),
        # Signalled by the supervisor (a reload's retired process, the workspace
        # closing) or anyone else: finish or cancel runs before the SIGKILL.
        "--shutdown-grace",
        str(shutdown_grace(options)),
        # Listen first and load in a thread: the host can then ask a slow
        # load what it is importing, and a load error arrives as data.
        "--lazy-load-user-code",
        # Import progress, readable even when the server is too stuck to answer.
        "--load-status-file",
        load_status_path,
    ]


def shutdown_grace(options: CodeServerOptions) -> float:
    """The grace a supervised code server gives its runs on SIGTERM: a second less than the
    supervisor waits before SIGKILL, so the canceled runs' last events still get out."""
    return max(0.0, options.stop_grace - 1.0)


def code_server_environment(target: CodeServerTarget) -> dict[str, str]:
    """The host's environment plus what a supervised code server needs."""
    env = dict(os.environ)
    env["RUNTIME_PARENT_PID"] = str(os.getpid())
    # User code's prints reach the host's logging as they happen.
    env["PYTHONUNBUFFERED"] = "1"
    if target.executable_path:
        # Don't resolve symlinks: a venv's python is a link to the base
        # interpreter, and the link's location is what makes it the venv's.
        bin_dir = Path(target.executable_path).parent
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")]).rstrip(os.pathsep)
        env.pop("PYTHONHOME", None)
        if (bin_dir.parent / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(bin_dir.parent)
        else:
            env.pop("VIRTUAL_ENV", None)
    return env


class CodeServerProcess:
    """A running code server subprocess of one managed location.

    Created by `run_code_server`, which owns it; `stop()` may be called from
    any task and any number of times.
    """

    def __init__(
        self,
        *,
        location_name: str,
        process: Process,
        socket_path: str,
        load_status_path: str,
        started_at: float,
    ) -> None:
        self.location_name = location_name
        self.socket_path = socket_path
        self.load_status_path = load_status_path
        # anyio.current_time() at spawn.
        self.started_at = started_at
        self.server_id = ""
        self.address = ""
        self.exited = anyio.Event()
        self._process = process
        self._logger = logging.getLogger(f"runtime.location.{location_name}")
        self._log_extra = {"location_name": location_name}
        self._ready_or_exited = anyio.Event()
        self._ready_error: str | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._stopping = False

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def exit_description(self) -> str:
        """How the process ended, e.g. 'was killed by SIGKILL'; '' while it runs."""
        if self.returncode is None:
            return ""
        return describe_returncode(self.returncode)

    def stderr_tail(self) -> str:
        """The last lines the process wrote to stderr."""
        return "\n".join(self._stderr_tail)

    def kill(self) -> None:
        """SIGKILL the process group now (the reaper notices the exit)."""
        self._signal_group(signal.SIGKILL)

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, wait up to `grace` seconds, then SIGKILL; reap it.

        Shielded from cancellation, so a cancelled host still cleans up.
        """
        with anyio.CancelScope(shield=True):
            if self._stopping:
                # Another task is already stopping it; don't cut its grace short.
                await self.exited.wait()
                return
            self._stopping = True
            if self.returncode is None:
                self._signal_group(signal.SIGTERM)
                with anyio.move_on_after(grace):
                    await self._process.wait()
            if self.returncode is None:
                self._signal_group(signal.SIGKILL)
            await self._process.wait()
            self._on_exit()

    # --- owned by run_code_server ------------------------------------------

    def _signal_group(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self._process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _on_exit(self) -> None:
        if self.exited.is_set():
            return
        # Whatever user code started in the group goes with the server.
        self._signal_group(signal.SIGKILL)
        self.exited.set()
        self._ready_or_exited.set()

    async def _reap(self) -> None:
        await self._process.wait()
        self._on_exit()

    async def _wait_ready(self, deadline: float) -> LocationFailure | None:
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await self._ready_or_exited.wait()
        if self.server_id:
            return None
        now = anyio.current_time()
        if self.returncode is not None:
            message = (
                f"location {self.location_name!r}: the code server {self.exit_description()} "
                f"before it was ready."
            )
            type_ = "CodeServerExited"
        elif self._ready_error is not None:
            message = f"location {self.location_name!r}: {self._ready_error}"
            type_ = "CodeServerProtocolError"
        else:
            message = (
                f"location {self.location_name!r}: the code server did not report ready "
                f"within {now - self.started_at:.1f} s."
            )
            type_ = "TimeoutError"
        tail = self.stderr_tail()
        return LocationFailure(
            type=type_,
            message=message + (f"\nIts last output on stderr:\n{tail}" if tail else ""),
            time=_wall_clock(),
        )

    def _on_line(self, line: str, stream: str) -> None:
        if stream == "stdout" and not self.server_id and READY_MARKER in line:
            # User code may have printed without a newline just before it.
            before = line[: line.index(READY_MARKER)]
            if before.strip():
                self._log(before, stream)
            ready = parse_ready_line(line)
            if ready is None:
                self._ready_error = (
                    f"the code server printed a ready line that is not valid: {line!r}."
                )
            else:
                self.server_id, self.address = ready.server_id, ready.address
            self._ready_or_exited.set()
            return
        if stream == "stderr":
            self._stderr_tail.append(line)
        self._log(line, stream)

    def _log(self, line: str, stream: str) -> None:
        level = logging.INFO if stream == "stdout" else logging.WARNING
        self._logger.log(level, "%s", line, extra={**self._log_extra, "stream": stream})

    async def _pump(self, stream: ByteReceiveStream, name: str, done: anyio.Event) -> None:
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    break
                buffer += chunk
                while True:
                    newline = buffer.find(b"\n")
                    if newline < 0:
                        if len(buffer) >= _MAX_LINE_BYTES:
                            self._on_line(_decode(buffer), name)
                            buffer.clear()
                        break
                    self._on_line(_decode(buffer[:newline]), name)
                    del buffer[: newline + 1]
            if buffer:
                self._on_line(_decode(buffer), name)
        finally:
            done.set()


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace").rstrip("\r")


def _wall_clock() -> float:
    return time.time()


async def run_code_server(
    target: CodeServerTarget,
    options: CodeServerOptions,
    *,
    deadline: float,
    task_status: TaskStatus[CodeServerProcess] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Spawn the location's code server and own it until it exits.

    Reports the CodeServerProcess through `task_status` once the ready line
    arrived, then forwards output until the process exits. Cancelling this task
    stops the process (terminate, grace, kill). Raises CodeServerStartError when
    the process exits or `deadline` (anyio.current_time()) passes before it is
    ready, and CodeLocationError when it cannot be spawned at all.
    """
    socket_dir = tempfile.mkdtemp(prefix="runtime-location-")  # mode 0700
    try:
        socket_path = os.path.join(socket_dir, "server.sock")
        load_status_path = os.path.join(socket_dir, "load-status.json")
        command = code_server_command(
            target, socket_path=socket_path, load_status_path=load_status_path, options=options
        )
        try:
            process = await anyio.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=target.working_directory,
                env=code_server_environment(target),
                start_new_session=True,
            )
        except OSError as exc:
            raise CodeLocationError(
                f"location {target.name!r}: could not start its code server with "
                f"{command[0]!r}: {exc}."
            ) from exc
        server = CodeServerProcess(
            location_name=target.name,
            process=process,
            socket_path=socket_path,
            load_status_path=load_status_path,
            started_at=anyio.current_time(),
        )
        failure: LocationFailure | None = None
        try:
            async with anyio.create_task_group() as tg:
                stdout_done, stderr_done = anyio.Event(), anyio.Event()
                assert process.stdout is not None and process.stderr is not None
                tg.start_soon(server._pump, process.stdout, "stdout", stdout_done)
                tg.start_soon(server._pump, process.stderr, "stderr", stderr_done)
                tg.start_soon(server._reap)
                failure = await server._wait_ready(deadline)
                if failure is None:
                    task_status.started(server)
                    await server.exited.wait()
                else:
                    await server.stop(options.stop_grace)
                with anyio.move_on_after(_DRAIN_SECONDS):
                    await stdout_done.wait()
                    await stderr_done.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await server.stop(options.stop_grace)
                await process.aclose()
        if failure is not None:
            raise CodeServerStartError(failure)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
