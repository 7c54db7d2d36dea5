"""Die with the parent: a supervised code server must not outlive its host.

A supervisor sets RUNTIME_PARENT_PID to its own pid. On Linux the kernel then
sends SIGTERM when the parent dies (PR_SET_PDEATHSIG); the pid check catches a
parent that died before the request was made. Heartbeats cover other systems.
"""

from __future__ import annotations

import os
import signal
import sys

PARENT_PID_ENV = "RUNTIME_PARENT_PID"
_PR_SET_PDEATHSIG = 1


class ParentGoneError(Exception):
    """The parent named by RUNTIME_PARENT_PID is no longer this process's parent."""


def die_with_parent() -> None:
    """Arrange SIGTERM on parent death when RUNTIME_PARENT_PID is set.

    The variable is removed from the environment so the processes user code
    starts do not inherit a parent that is not theirs. Raises ParentGoneError
    when the parent already exited, and ValueError when the variable is not a pid.
    """
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value:
        return
    try:
        parent_pid = int(value)
    except ValueError:
        raise ValueError(f"{PARENT_PID_ENV}={value!r} is not a process id.") from None
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    if os.getppid() != parent_pid:
        raise ParentGoneError(
            f"The parent process {parent_pid} ({PARENT_PID_ENV}) has already exited; "
            "the code server will not start without it."
        )
