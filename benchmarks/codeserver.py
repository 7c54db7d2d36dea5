"""Our code server as a benchmark sees it: spawn, wait for the ready line, fetch the snapshot."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import Process

READY_PREFIX = "RUNTIME_CODE_SERVER_READY"
STARTUP_TIMEOUT = 600.0


@dataclass(slots=True)
class LoadSample:
    """One load: seconds from spawn to snapshot on the host, and what it loaded."""

    seconds: float
    pid: int
    assets: int
    jobs: int
    ready: dict[str, Any]


async def _read_ready_line(process: Process, file: Path) -> dict[str, Any]:
    assert process.stdout is not None
    buffer = b""
    async for chunk in process.stdout:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            text = line.decode(errors="replace").strip()
            if text.startswith(READY_PREFIX):
                ready: dict[str, Any] = json.loads(text[len(READY_PREFIX) :].strip())
                return ready
    raise RuntimeError(
        f"The code server for {file} exited (status {await process.wait()}) "
        f"without printing its {READY_PREFIX} line."
    )


async def _stop(process: Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with anyio.move_on_after(10):
                await process.wait()
                return
            process.kill()
        await process.wait()


async def load_once(
    file: Path, socket: Path, *, measure_rss: bool = True
) -> tuple[LoadSample, float]:
    """Spawn `python -m runtime api grpc -f file --socket socket`, fetch its snapshot, stop it.

    Returns the sample and the server's peak RSS in MiB (0.0 when not measured).
    Raises RuntimeError with the server's stderr when it fails to start.
    """
    from benchmarks.procs import peak_rss_mib
    from runtime.protocol.client import CodeLocationClient

    argv = [
        sys.executable,
        "-m",
        "runtime",
        "api",
        "grpc",
        "-f",
        str(file),
        "--socket",
        str(socket),
    ]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = await anyio.open_process(
            argv, cwd=file.parent, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            with anyio.fail_after(STARTUP_TIMEOUT):
                ready = await _read_ready_line(process, file)
                async with CodeLocationClient(socket=str(socket)) as client:
                    snapshot = await client.snapshot()
            seconds = time.perf_counter() - start
            rss = peak_rss_mib(process.pid) if measure_rss else 0.0
        except BaseException as exc:
            await _stop(process)
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-4000:]
            if isinstance(exc, Exception):
                raise RuntimeError(
                    f"Loading {file} through our code server failed: {exc}\n{tail}"
                ) from exc
            raise
        await _stop(process)
    sample = LoadSample(
        seconds=seconds,
        pid=process.pid,
        assets=len(snapshot.assets),
        jobs=len(snapshot.jobs),
        ready=ready,
    )
    return sample, rss
