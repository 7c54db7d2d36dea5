"""Who is running a run: the identity of a host process, and whether it still lives.

A run records the process that created it, and then the one that starts it.
When an instance opens, a run still NOT_STARTED, STARTING, STARTED or
CANCELING whose host is gone can never finish, so it is marked FAILURE. A bare pid is not enough, pids are reused: on Linux the boot id
and the process start tick pin the identity to one process of one boot.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from runtime.instance.records import RunHost, RunRecord

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    try:
        return _BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


def _process_stat(pid: int) -> tuple[str, int] | None:
    """(state, start tick) of a live process from /proc, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); the start time is field 22.
    return fields[0], int(fields[19])


@functools.cache
def current_host() -> RunHost:
    """The identity of this process, as recorded on the runs it starts."""
    pid = os.getpid()
    stat = _process_stat(pid)
    return RunHost(
        hostname=socket.gethostname(),
        pid=pid,
        boot_id=_boot_id(),
        process_start=stat[1] if stat is not None else None,
    )


def host_is_alive(host: RunHost) -> bool | None:
    """True if the recorded host process still runs, False if it is gone, None when
    this machine cannot tell (the host was another machine)."""
    here = current_host()
    if host.hostname != here.hostname:
        return None
    if host.boot_id is not None and here.boot_id is not None and host.boot_id != here.boot_id:
        return False  # the machine rebooted since
    if host.pid == here.pid and host.process_start == here.process_start:
        return True
    if here.boot_id is not None:  # /proc is there: trust it
        stat = _process_stat(host.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return host.process_start is None or stat[1] == host.process_start
    try:
        os.kill(host.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def dead_host_reason(run: RunRecord) -> str | None:
    """Why an in-flight run can never finish because its host exited, or None if it may."""
    if run.host is None or host_is_alive(run.host) is not False:
        return None
    return (
        f"The host process (pid {run.host.pid}) that ran this run exited before it finished; "
        f"the run was {run.status} when the instance found it."
    )
