"""Code server lifecycle: sockets, signals, Shutdown, heartbeats, parent death."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from runtime.protocol.messages import PROTOCOL_VERSION
from runtime.protocol.ready_line import parse_ready_line
from runtime.version import __version__
from tests.helpers_server import code_server_command, start_code_server, wait_until
from tests.server.server_helpers import HELLO


@pytest.mark.anyio
async def test_unix_socket_has_mode_0600_and_serves(tmp_path: Path) -> None:
    socket_path = tmp_path / "server.sock"
    async with start_code_server("-f", HELLO, "--socket", str(socket_path)) as server:
        assert server.address == f"unix:{socket_path}"
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        async with server.client() as client:
            info = await client.server_info()
        assert info.server_id == server.server_id
        assert info.pid == server.pid
        assert info.protocol_version == PROTOCOL_VERSION
        assert info.runtime_version == __version__
        assert info.location_name == "definitions"
        assert info.load_status == "loaded"
        assert info.executable == sys.executable
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    assert not socket_path.exists()


@pytest.mark.anyio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_the_server_gracefully(signum: signal.Signals) -> None:
    async with start_code_server("-f", HELLO, "--port", "0", "--location-name", "hi") as server:
        async with server.client() as client:
            await client.ping()
        server.process.send_signal(signum)
        assert await server.wait() == 0
    assert server.stdout.count("RUNTIME_CODE_SERVER_READY") == 1


@pytest.mark.anyio
async def test_shutdown_rpc_replies_then_exits() -> None:
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        async with server.client() as client:
            reply = await client.shutdown(timeout=5)
        assert reply.server_id == server.server_id
        assert reply.runs_in_flight == 0
        assert await server.wait() == 0


@pytest.mark.anyio
async def test_heartbeats_keep_the_server_alive_until_they_stop() -> None:
    args = ("-f", HELLO, "--port", "0", "--heartbeat", "--heartbeat-timeout", "0.6")
    async with start_code_server(*args) as server:
        async with server.client() as client:
            for _ in range(8):  # 1.2 s: twice the timeout
                await client.heartbeat("test", timeout=2)
                await anyio.sleep(0.15)
            assert server.process.returncode is None
            quiet_since = time.monotonic()
            status = await server.wait(limit=5)
            waited = time.monotonic() - quiet_since
    assert status == 0
    assert 0.3 < waited < 3.0
    assert "no heartbeat arrived within 0.6 s" in server.stderr


@pytest.mark.anyio
async def test_without_heartbeats_the_server_exits_after_the_timeout() -> None:
    started = time.monotonic()
    args = ("-f", HELLO, "--port", "0", "--heartbeat", "--heartbeat-timeout", "0.5")
    async with start_code_server(*args) as server:
        assert await server.wait(limit=5) == 0
    assert time.monotonic() - started < 5


def test_a_server_whose_parent_already_exited_does_not_start() -> None:
    # The server is our child, so its parent is never PID 1.
    result = subprocess.run(
        code_server_command("-f", HELLO, "--port", "0"),
        env={**os.environ, "RUNTIME_PARENT_PID": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "The parent process 1 (RUNTIME_PARENT_PID) has already exited" in result.stderr
    assert parse_ready_line(result.stdout) is None


@pytest.mark.anyio
async def test_the_server_dies_with_its_parent(tmp_path: Path) -> None:
    """A middle process starts the server with RUNTIME_PARENT_PID, then is SIGKILLed."""
    pid_file = tmp_path / "server.pid"
    middle = f"""
import os, subprocess, sys, time
env = dict(os.environ, RUNTIME_PARENT_PID=str(os.getpid()))
server = subprocess.Popen({code_server_command("-f", HELLO, "--port", "0")!r}, env=env,
                          stdout=subprocess.PIPE)
line = server.stdout.readline()
open({str(pid_file)!r}, "w").write(str(server.pid))
time.sleep(60)
"""
    async with await anyio.open_process([sys.executable, "-c", middle]) as process:
        await wait_until(lambda: pid_file.exists() and bool(pid_file.read_text()), limit=30)
        server_pid = int(pid_file.read_text())
        process.kill()
        await process.wait()
    try:
        await wait_until(lambda: not _alive(server_pid), limit=10)
    finally:
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_port_and_socket_are_exclusive(tmp_path: Path) -> None:
    result = subprocess.run(
        code_server_command("-f", HELLO, "--port", "0", "--socket", str(tmp_path / "s")),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_an_address_in_use_is_a_one_line_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            code_server_command("-f", HELLO, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"runtime api grpc: Cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr
