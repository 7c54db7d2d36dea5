"""Dagster's load: spawn `dagster api grpc -f FILE --socket S` until a client holds the repository snapshot.

Run under the peer interpreter (one with dagster installed):
    python dagster_load.py --file gen_dagster.py --assets 100 --repeats 3 --warmup 1
Prints one JSON line: {"seconds": [...], "rss_mib": [...], "dagster": version}.
The host side (this process) imports dagster before the clock starts, as a
long-lived Dagster webserver or daemon would have.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster  # type: ignore[import-not-found,unused-ignore]
from _peer_common import emit, peak_rss_mib
from dagster._core.instance import DagsterInstance  # type: ignore[import-not-found,unused-ignore]
from dagster._core.remote_origin import (  # type: ignore[import-not-found,unused-ignore]
    GrpcServerCodeLocationOrigin,
)
from dagster._core.remote_representation.code_location import (  # type: ignore[import-not-found,unused-ignore]
    GrpcServerCodeLocation,
)
from dagster._grpc.client import DagsterGrpcClient  # type: ignore[import-not-found,unused-ignore]

POLL_SECONDS = 0.005


def wait_until_serving(client: Any, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Ping until the server answers; Dagster's own host polls the same way."""
    while True:
        try:
            client.ping("")
            return
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"dagster api grpc exited with {proc.returncode} before serving."
                ) from None
            if time.monotonic() > deadline:
                raise TimeoutError("dagster api grpc did not answer a ping in time.") from None
            time.sleep(POLL_SECONDS)


def load_once(
    file: Path, assets: int, workdir: Path, index: int, instance: Any
) -> dict[str, float]:
    socket = workdir / f"dagster-{index}.sock"
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "api",
                "grpc",
                "-f",
                str(file),
                "--socket",
                str(socket),
            ],
            cwd=file.parent,
            stdout=log,
            stderr=log,
        )
        try:
            client = DagsterGrpcClient(socket=str(socket))
            wait_until_serving(client, proc, time.monotonic() + 600)
            origin = GrpcServerCodeLocationOrigin(
                host="localhost", socket=str(socket), location_name="bench"
            )
            location = GrpcServerCodeLocation(origin=origin, instance=instance, watch_server=False)
            repository = next(iter(location.get_repositories().values()))
            loaded = len(repository.get_asset_node_snaps())
            seconds = time.perf_counter() - start
            if loaded != assets:
                raise RuntimeError(
                    f"The snapshot of {file} holds {loaded} assets, expected {assets}."
                )
            rss = peak_rss_mib(proc.pid)
            location.cleanup()
            client.shutdown_server()
            proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
    return {"seconds": seconds, "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--assets", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"seconds": [], "rss_mib": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-dg-") as tmp,
        DagsterInstance.ephemeral() as instance,
    ):
        for i in range(args.warmup + args.repeats):
            once = load_once(args.file.resolve(), args.assets, Path(tmp), i, instance)
            if i >= args.warmup:
                for key, value in once.items():
                    samples[key].append(value)
    emit({**samples, "dagster": dagster.__version__})


if __name__ == "__main__":
    main()
