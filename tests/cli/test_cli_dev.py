"""`runtime dev`: the workspace, the daemon and the web server in one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING, Any

from tests.cli.test_cli_daemon import LOCATION, alive, wait_for
from tests.cli.test_cli_jobs_and_runs import runtime_cli

if TYPE_CHECKING:
    from pathlib import Path


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_dev_serves_the_api_while_the_daemon_ticks_and_stops_on_sigint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    location = tmp_path / "ticking.py"
    location.write_text(LOCATION)
    pid_file = tmp_path / "code-server.pid"
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime", "dev", "-f", str(location), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RUNTIME_HOME": str(home), "PID_FILE": str(pid_file)},
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        ready = process.stdout.readline()
        assert ready.startswith(
            "runtime dev: 1 of 1 locations loaded; serving on http://127.0.0.1:"
        )
        url = ready.split("serving on ")[1].split()[0]

        def sensor_launched() -> bool:
            (sensor,) = get(f"{url}/api/sensors")
            return any(tick["status"] == "success" for tick in sensor["ticks"])

        wait_for(sensor_launched)
        (sensor,) = get(f"{url}/api/sensors")
        assert sensor["name"] == "every_second" and sensor["status"] == "running"
        runs = get(f"{url}/api/runs?tag=runtime/sensor_name=every_second")
        assert runs and {run["job"] for run in runs} == {"work"}

        refused = runtime_cli("daemon", "run", "-f", str(location), home=home, cwd=tmp_path)
        assert refused.returncode == 1 and "Another daemon is running" in refused.stderr

        code_server = int(pid_file.read_text())
        port = int(url.rsplit(":", 1)[1])
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        assert process.returncode == 0
        assert "runtime dev: stopping" in process.stderr.read()
        wait_for(lambda: not alive(code_server), limit=10)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_dev_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    location = tmp_path / "ticking.py"
    location.write_text(LOCATION)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runtime_cli(
            "dev", "-f", str(location), "--port", str(port), home=tmp_path / "home", cwd=tmp_path
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: Cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "home").exists()  # refused before anything was opened
