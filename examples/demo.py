"""`make demo`: start the hello-world code server and show what it serves.

Spawns `runtime api grpc` on a Unix socket in a temporary folder, waits for
its ready line, fetches the snapshot with CodeLocationClient, prints the
jobs, assets, schedules, sensors and load timings, then shuts the server down
and checks that it exited.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.protocol.client import CodeLocationClient
from runtime.server.ready import ReadyInfo, parse_ready_line

if TYPE_CHECKING:
    from runtime.protocol.messages import Snapshot

LOCATION = Path(__file__).resolve().parent / "hello_world" / "definitions.py"


async def wait_for_ready(process: asyncio.subprocess.Process) -> ReadyInfo:
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            raise SystemExit(
                f"The code server exited with status {await process.wait()} before it was ready."
            )
        ready = parse_ready_line(line)
        if ready is not None:
            return ready
        print(f"  [server] {line.decode().rstrip()}")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def show(snapshot: Snapshot) -> None:
    print(f"\nLocation {snapshot.location_name!r} (server {snapshot.server_id[:8]})")
    print("\nJobs:")
    for job in snapshot.jobs:
        print(f"  {job.name}{'  (asset job)' if job.is_asset_job else ''}")
        for step in job.steps:
            upstream = [i.upstream_step for i in step.inputs if i.upstream_step]
            arrow = f" <- {', '.join(upstream)}" if upstream else ""
            kind = "async" if step.is_async else "sync"
            print(f"    {step.key} [{step.kind}, {kind}]{arrow}")
    print("\nAssets:")
    for asset in snapshot.assets:
        deps = f" depends on {', '.join(asset.deps)}" if asset.deps else ""
        print(f"  {asset.key} (group {asset.group_name}){deps}")
    print("\nSchedules:")
    for schedule in snapshot.schedules:
        print(f"  {schedule.name}: {schedule.cron_schedule!r} -> {schedule.job_name}")
    print("\nSensors:")
    for sensor in snapshot.sensors:
        print(f"  {sensor.name}: every {sensor.minimum_interval_seconds} s -> {sensor.job_name}")
    timings = snapshot.timings
    slowest = ", ".join(
        f"{t.module} {t.seconds * 1000:.1f} ms" for t in timings.slowest_modules[:3]
    )
    print(
        f"\nLoad: {timings.total_seconds * 1000:.1f} ms "
        f"(imports {timings.import_seconds * 1000:.1f} ms; slowest: {slowest})"
    )


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="runtime-demo-") as folder:
        socket_path = str(Path(folder) / "hello.sock")
        command = [sys.executable, "-m", "runtime", "api", "grpc", "--python-file", str(LOCATION)]
        command += ["--socket", socket_path, "--location-name", "hello_world"]
        print("$ runtime api grpc --python-file examples/hello_world/definitions.py --socket ...")
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
        try:
            ready = await asyncio.wait_for(wait_for_ready(process), timeout=30)
            ready_after = time.perf_counter() - started
            async with CodeLocationClient.for_address(ready.address) as client:
                snapshot = await client.snapshot(timeout=30)
                in_hand = time.perf_counter() - started
                show(snapshot)
                rss = rss_mib(ready.pid)
                print(
                    f"Spawn to ready line: {ready_after * 1000:.0f} ms; "
                    f"spawn to snapshot in hand: {in_hand * 1000:.0f} ms"
                    + (f"; server RSS {rss:.1f} MiB" if rss else "")
                )
                await client.shutdown(timeout=5)
            status = await asyncio.wait_for(process.wait(), timeout=10)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        print(f"\nThe code server (pid {ready.pid}) shut down with status {status}.")
        return 0 if status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
