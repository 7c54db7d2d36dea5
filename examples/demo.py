"""`make demo`: load the example workspace, launch a run, show its events.

Three locations come from examples/workspace/workspace.yaml and run in code
servers the workspace supervises; a fourth is a `grpc_server` location: a code
server this script starts on its own, as another team would run one on another
machine. The script lists the workspace, launches the `etl` job of hello_world
and prints every event as it is stored, launches the asset job of the remote
location, and checks on the way out that every process it started is gone.
Runs are stored in RUNTIME_HOME (default .runtime/ here): `runtime run list`
shows them afterwards.

    python examples/demo.py
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import anyio

from runtime import Workspace
from runtime.cli.common import describe_event, format_steps
from runtime.cli.workspace_cmd import format_locations
from runtime.workspace.config import grpc_server_spec, load_workspace_file

HERE = Path(__file__).resolve().parent
WORKSPACE_FILE = HERE / "workspace" / "workspace.yaml"
REMOTE_CODE = HERE / "hello_world" / "definitions.py"


def start_remote_server(token: str) -> tuple[subprocess.Popen[str], int]:
    """A standalone code server on a free TCP port, guarded by `token`; returns it and its port."""
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
        # A TCP code server needs a shared secret; the environment keeps it off argv.
        env={**os.environ, "RUNTIME_CODE_SERVER_TOKEN": token},
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


async def main() -> int:
    token = secrets.token_urlsafe(32)
    remote, port = start_remote_server(token)
    try:
        specs = load_workspace_file(WORKSPACE_FILE)
        specs.append(
            grpc_server_spec(
                host="127.0.0.1",
                port=port,
                socket=None,
                location_name="remote_hello",
                auth_token=token,
            )
        )
        started = time.perf_counter()
        async with Workspace.from_specs(specs) as ws:
            print(
                f"Loaded {len(ws.locations)} locations in {time.perf_counter() - started:.2f} s\n"
            )
            print(format_locations(list(ws.locations.values())))
            managed = [loc.pid for loc in ws.locations.values() if loc.is_managed and loc.pid]

            print("\nLaunching job 'etl' of location 'hello_world':\n")
            run = await ws.launch_run(job="etl", location="hello_world", tags={"source": "demo"})
            async for event in run.events():
                print(describe_event(event))
            result = await run.wait()
            print("\n" + format_steps(result))
            print(f"\nrun {run.run_id}: {result.status} in {(result.duration or 0) * 1000:.1f} ms")

            remote_run = await ws.launch_run(job="__ASSET_JOB", location="remote_hello")
            remote_result = await remote_run.wait()
            print(
                f"run {remote_run.run_id} (assets, on the grpc_server location): "
                f"{remote_result.status}, {remote_result.event_count} events stored"
            )
            ok = result.success and remote_result.success
        left = [pid for pid in managed if is_running(pid)]
        print(f"\nWorkspace closed; code server processes still running: {left or 'none'}.")
        print("Stored runs: `.venv/bin/runtime run list`.")
        print(
            "The UI, the API and the daemon over this workspace: "
            "`.venv/bin/runtime dev -w examples/workspace/workspace.yaml`, "
            "then open http://127.0.0.1:3000."
        )
        return 0 if ok and not left else 1
    finally:
        remote.terminate()
        remote.wait(timeout=10)
        if remote.stdout is not None:
            remote.stdout.close()


if __name__ == "__main__":
    sys.exit(anyio.run(main))
