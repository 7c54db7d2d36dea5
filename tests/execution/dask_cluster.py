"""A real Dask cluster for the dask executor tests: `dask scheduler` and two `dask worker` processes.

Everything listens on 127.0.0.1 without a dashboard. The workers run one
thread each (two steps at once, on two different processes) under a nanny,
which starts a worker again when a test kills it. The scheduler allows no
rerun of a task whose worker died (`allowed-failures` 0), as the executor's
README advises, so such a step fails or retries under its own RetryPolicy.
The processes start in an empty folder: the workers find the tests' modules
only through the executor itself (it puts the code location's import roots
on their sys.path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WORKERS = 2
START_TIMEOUT = 90.0
STOP_GRACE = 20.0


@dataclass
class DaskCluster:
    """The processes of a running cluster and the scheduler's address."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker_pids(self) -> set[int]:
        """Pids of the worker processes (the nannies' children) alive now."""
        pids: set[int] = set()
        for nanny in self.workers:
            pids.update(_children(nanny.pid))
        return pids

    def wait_for_workers(self, count: int = WORKERS, timeout: float = START_TIMEOUT) -> None:
        """Block until `count` workers are connected (a killed one is started again by its nanny)."""
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)
            deadline = time.monotonic() + timeout
            # wait_for_workers counts a worker that is still being removed.
            while len(client.scheduler_info(n_workers=-1)["workers"]) != count:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the Dask cluster at {self.address} has not {count} workers"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the workers, then the scheduler: grace, then kill."""
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                for child in _children(process.pid):
                    _kill(child)
                process.kill()
                process.wait(STOP_GRACE)


def start_cluster(folder: Path) -> DaskCluster:
    """Start a scheduler and WORKERS workers in `folder`; raises TimeoutError if they do not come up."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
        # Nothing of the checkout on the workers' path but what the executor adds.
        "PYTHONPATH": "",
    }
    # The processes write to it; the parent closes its copy once they started.
    log = open(folder / "cluster.log", "ab")
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            # /health and /metrics are served even without a dashboard.
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            str(scheduler_file),
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=log,
    )
    cluster = DaskCluster(address="", scheduler=scheduler)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler did not start; see {folder / 'cluster.log'}")
            time.sleep(0.05)
        import json

        cluster.address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(WORKERS):
            cluster.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        cluster.address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--death-timeout",
                        "60",
                    ],
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            )
        cluster.wait_for_workers()
    except BaseException:
        cluster.stop()
        raise
    finally:
        log.close()
    return cluster


def _children(pid: int) -> list[int]:
    """Live children of pid, from /proc (a child started by any of its threads)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
