"""Run a Dagster-side script from benchmarks/peers/ under the peer interpreter."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).parent / "peers"
# Must match RESULT_MARKER in peers/_peer_common.py.
RESULT_MARKER = "BENCH_PEER_RESULT "


class PeerError(RuntimeError):
    """A peer script failed: the message names the script, its exit status and stderr tail."""


def run_peer(peer_python: Path, script: str, args: list[str], *, timeout: float) -> dict[str, Any]:
    """Run `peer_python benchmarks/peers/<script> args...` and return the JSON of its result line.

    Raises PeerError when the script exits non-zero, times out, or prints no JSON.
    """
    path = PEERS_DIR / script
    command = [str(peer_python), str(path), *args]
    with tempfile.TemporaryFile() as stderr_file:
        try:
            done = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=stderr_file, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PeerError(
                f"Peer script {path.name} did not finish within {timeout:.0f} s."
            ) from exc
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace")
    output = done.stdout.decode(errors="replace")
    marked = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not marked:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise PeerError(
            f"Peer script {path.name} exited with {done.returncode} "
            f"({'with' if marked else 'without'} a result line; {' '.join(command)}); "
            f"stderr ends with:\n{tail}"
        )
    try:
        result: dict[str, Any] = json.loads(marked[-1][len(RESULT_MARKER) :])
    except json.JSONDecodeError as exc:
        raise PeerError(
            f"Peer script {path.name} printed a result line that is not JSON: {marked[-1][:200]!r}."
        ) from exc
    return result


def peer_version(peer_python: Path) -> str:
    """The Dagster version of the peer interpreter; raises PeerError when it has none."""
    done = subprocess.run(
        [str(peer_python), "-c", "import dagster; print(dagster.__version__)"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise PeerError(
            f"--peer-python {peer_python} cannot import dagster: "
            f"{done.stderr.decode(errors='replace').strip().splitlines()[-1:]}; "
            "run benchmarks/peers/setup_dagster.sh to make that interpreter."
        )
    return done.stdout.decode().strip()
