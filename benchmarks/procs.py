"""Processes: peak memory from /proc, descendants, and spawn-to-exit timing."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    path = Path(f"/proc/{pid}/status")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProcessLookupError(f"Cannot read {path}: process {pid} is gone ({exc}).") from exc
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ProcessLookupError(f"{path} has no {field} line (process {pid} is a zombie?).")


def peak_rss_mib(pid: int) -> float:
    """The peak resident set size (VmHWM) of a live process, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain leads to pid (pid excluded)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def total_peak_rss_mib(pids: Sequence[int]) -> float:
    """The sum of the peak RSS of the given live processes, skipping ones already gone."""
    total = 0.0
    for pid in pids:
        try:
            total += peak_rss_mib(pid)
        except ProcessLookupError:
            continue
    return total


# Appended to a `python -c` program so it reports its own peak RSS as it ends.
# The rusage of a child is no use here: Linux carries the parent's high-water
# mark over fork and exec into the child's ru_maxrss.
REPORT_PEAK_RSS = (
    "import sys; sys.stdout.write(next(l for l in open('/proc/self/status') "
    "if l.startswith('VmHWM:')))"
)


def python_to_exit(
    python: str, code: str, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Run `python -c code`, and return {"seconds": spawn to exit, "rss_mib": its peak RSS}.

    Raises RuntimeError, with the command and its stderr, when it exits non-zero.
    """
    argv = [python, "-c", f"{code}\n{REPORT_PEAK_RSS}"]
    # stderr goes to a file, not a pipe: a chatty child cannot block on a full pipe.
    with tempfile.TemporaryFile() as stderr_file:
        start = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            stderr_file.seek(0)
            stderr = stderr_file.read().decode(errors="replace")
            raise RuntimeError(
                f"`python -c {code!r}` exited with {done.returncode}; stderr:\n{stderr}"
            )
    last = done.stdout.decode(errors="replace").strip().splitlines()[-1]
    return {"seconds": seconds, "rss_mib": int(last.split()[1]) / 1024}
