"""`runtime daemon run` as a process: it ticks in real time, refuses a second daemon, and
SIGINT or SIGTERM stop it and every process it started within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.test_cli_jobs_and_runs import runtime_cli

if TYPE_CHECKING:
    from collections.abc import Iterator

# A sensor that runs by default, ticks every second, writes the pid of the code
# server evaluating it (so the test can see that process go), and asks for one
# run per tick.
LOCATION = """
import os
from pathlib import Path
from runtime import Definitions, RunRequest, job, op, sensor

@op
def noop() -> int:
    return 1

@job
def work():
    noop()

@sensor(job=work, minimum_interval_seconds=1, default_status="running")
def every_second(context):
    Path(os.environ["PID_FILE"]).write_text(str(os.getpid()))
    n = int(context.cursor or 0) + 1
    context.update_cursor(str(n))
    return RunRequest(run_key=str(n))

defs = Definitions(jobs=[work], sensors=[every_second])
"""


class Daemon:
    """`runtime daemon run -f LOCATION` in its own process, on RUNTIME_HOME `home`."""

    def __init__(self, location: Path, home: Path, pid_file: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "daemon", "run", "-f", str(location)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=location.parent,
            env={**os.environ, "RUNTIME_HOME": str(home), "PID_FILE": str(pid_file)},
        )

    def ready_line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_for(check: object, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_daemon_run_ticks_refuses_a_second_and_stops_on_sigterm(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    # (`runtime dev`'s test stops it with SIGINT: both go through the same handler.)
    home = tmp_path / "home"
    location = tmp_path / "ticking.py"
    location.write_text(LOCATION)
    pid_file = tmp_path / "code-server.pid"
    daemon = Daemon(location, home, pid_file)
    daemons.append(daemon)
    ready = daemon.ready_line()
    assert ready.startswith("runtime daemon: 1 of 1 locations loaded; 0 schedules, 1 sensor;")

    def ticked_twice() -> bool:
        listed = runtime_cli(
            "sensor", "ticks", "every_second", "-f", str(location), "--json", home=home
        )
        ticks = json.loads(listed.stdout) if listed.returncode == 0 else []
        return len([t for t in ticks if t["status"] == "success"]) >= 2

    wait_for(ticked_twice)  # real time: one tick a second
    code_server = int(pid_file.read_text())
    assert alive(code_server)

    second = runtime_cli("daemon", "run", "-f", str(location), home=home, cwd=tmp_path)
    assert second.returncode == 1
    assert second.stderr.startswith("error: Another daemon is running on the instance at ")
    assert len(second.stderr.strip().splitlines()) == 1
    assert second.stdout == ""

    status = runtime_cli("daemon", "status", "--json", home=home)
    facts = json.loads(status.stdout)
    assert facts["running"] is True
    assert {loop["name"] for loop in facts["loops"]} == {
        "schedules",
        "sensors",
        "run_queue",
        "run_monitoring",
    }

    daemon.process.send_signal(signal.SIGTERM)
    daemon.process.wait(timeout=15)
    assert daemon.process.returncode == 0
    assert daemon.process.stderr is not None
    assert "runtime daemon: stopping" in daemon.process.stderr.read()
    wait_for(lambda: not alive(code_server), limit=10)

    runs = json.loads(runtime_cli("run", "list", "--json", "--limit", "100", home=home).stdout)
    assert runs and all(run["status"] in ("SUCCESS", "FAILURE") for run in runs)
    keys = [run["tags"]["runtime/run_key"] for run in runs]
    assert len(keys) == len(set(keys))
    stopped = json.loads(runtime_cli("daemon", "status", "--json", home=home).stdout)
    assert stopped["running"] is False


def test_daemon_status_of_a_home_with_no_daemon(tmp_path: Path) -> None:
    result = runtime_cli("daemon", "status", home=tmp_path / "nothing-here")
    assert result.returncode == 0, result.stderr
    assert "no daemon running on the instance at" in result.stdout
    assert not (tmp_path / "nothing-here").exists()


def test_daemon_run_with_a_missing_file_says_so_and_keeps_serving(tmp_path: Path) -> None:
    # A missing python_file puts only its location in error (the file may appear and be
    # reloaded): the daemon says which file in one line and runs until it is stopped.
    daemon = subprocess.Popen(
        [sys.executable, "-m", "runtime", "daemon", "run", "-f", "nope.py"],
        cwd=tmp_path,
        env={**os.environ, "RUNTIME_HOME": str(tmp_path / "home")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = daemon.stderr.readline()
            lines.append(line)
            if "daemon running on the instance" in line:
                break
        said = "".join(lines)
        assert "nope.py does not exist" in said, said
        assert "Traceback" not in said
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
        if daemon.stderr is not None:
            daemon.stderr.close()


def test_daemon_run_with_a_bad_flag_is_one_line(tmp_path: Path) -> None:
    bad = runtime_cli(
        "daemon", "run", "--tick-timeout", "0", "-f", "nope.py", home=tmp_path, cwd=tmp_path
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --tick-timeout must be positive, got 0.0."
