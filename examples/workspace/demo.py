"""`make demo`: load the example workspace and list it.

Three locations come from workspace.yaml and run in code servers the workspace
supervises; a fourth is a `grpc_server` location: a code server this script
starts on its own, as another team would run one on another machine. The
script lists the workspace, reloads one location, and checks on the way out
that every process the workspace started is gone.

    python examples/workspace/demo.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio

from runtime import Workspace
from runtime.cli.workspace_cmd import format_table
from runtime.workspace.config import grpc_server_spec, load_workspace_file

HERE = Path(__file__).resolve().parent
WORKSPACE_FILE = HERE / "workspace.yaml"
REMOTE_CODE = HERE.parent / "hello_world" / "definitions.py"


def start_remote_server() -> tuple[subprocess.Popen[str], int]:
    """A standalone code server on a free TCP port; returns it and its port."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime",
            "api",
            "grpc",
            "--python-file",
            str(REMOTE_CODE),
            "--location-name",
            "remote_hello",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    for line in server.stdout:
        marker, _, ready = line.partition(" ")
        if marker == "RUNTIME_CODE_SERVER_READY":
            return server, int(json.loads(ready)["address"].rpartition(":")[2])
    raise SystemExit(f"the standalone code server exited with {server.wait()} before it was ready")


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def main() -> None:
    remote, port = start_remote_server()
    try:
        specs = load_workspace_file(WORKSPACE_FILE)
        specs.append(
            grpc_server_spec(host="127.0.0.1", port=port, socket=None, location_name="remote_hello")
        )
        started = time.perf_counter()
        async with Workspace.from_specs(specs) as ws:
            print(
                f"Loaded {len(ws.locations)} locations in {time.perf_counter() - started:.2f} s:\n"
            )
            print(format_table(list(ws.locations.values())))
            managed = [loc.pid for loc in ws.locations.values() if loc.is_managed and loc.pid]

            location = ws.location("hello_world")
            old_pid = location.pid
            await ws.reload("hello_world")
            print(
                f"\nReloaded hello_world: pid {old_pid} -> {location.pid}, "
                f"{len(location.snapshot.assets) if location.snapshot else 0} assets, "
                f"history {[status for status, _ in location.history]}"
            )
            if old_pid is not None:
                managed.append(old_pid)
        left = [pid for pid in managed if is_running(pid)]
        print(f"\nWorkspace closed; code server processes still running: {left or 'none'}.")
        if left:
            raise SystemExit(1)
    finally:
        remote.terminate()
        remote.wait(timeout=10)
        if remote.stdout is not None:
            remote.stdout.close()


if __name__ == "__main__":
    anyio.run(main)
