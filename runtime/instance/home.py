"""RUNTIME_HOME: where it is, what is refused, and how it is created (only when an instance opens).

Reading an instance (`Instance.from_home`, `ws.instance`) creates nothing; the
directory is created, private to its owner, when the instance opens. A home
that every user may write to is refused: anyone could swap its instance.yaml
or its database.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runtime.errors import InstanceConfigError

HOME_ENV_VAR = "RUNTIME_HOME"
DEFAULT_HOME_DIR = ".runtime"
HOME_MODE = 0o700


def default_home() -> Path:
    """RUNTIME_HOME if set, else `.runtime/` under the current directory (absolute)."""
    configured = os.environ.get(HOME_ENV_VAR)
    return Path(configured).expanduser().absolute() if configured else Path.cwd() / DEFAULT_HOME_DIR


def check_home(home: Path) -> bool:
    """True if `home` exists (as a directory we accept), False if it does not exist yet.

    Raises InstanceConfigError when it is a file (or anything but a directory),
    or a directory every user may write to.
    """
    try:
        info = home.stat()
    except FileNotFoundError:
        return False
    except NotADirectoryError as exc:
        raise InstanceConfigError(
            f"RUNTIME_HOME {home} cannot be a directory: a part of its path is a file ({exc.strerror})."
        ) from exc
    except OSError as exc:
        raise InstanceConfigError(f"RUNTIME_HOME {home} cannot be read: {exc.strerror}.") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise InstanceConfigError(
            f"RUNTIME_HOME {home} is a file, not a directory; remove it or set RUNTIME_HOME "
            "to a directory."
        )
    if info.st_mode & stat.S_IWOTH:
        raise InstanceConfigError(
            f"RUNTIME_HOME {home} is writable by every user (mode {stat.S_IMODE(info.st_mode):o}), "
            f"so anyone could change its instance.yaml or its runs; run `chmod o-w {home}` "
            "or use another directory."
        )
    return True


def create_home(home: Path) -> None:
    """Create `home` (mode 0700, parents as needed) unless it exists; check it either way.

    Blocking: call it off the event loop. Raises InstanceConfigError as check_home
    does, or when the directory cannot be created.
    """
    if check_home(home):
        return
    try:
        home.mkdir(parents=True, mode=HOME_MODE)
    except FileExistsError:
        pass  # another process created it meanwhile
    except OSError as exc:
        raise InstanceConfigError(f"Cannot create RUNTIME_HOME {home}: {exc.strerror}.") from exc
    else:
        home.chmod(HOME_MODE)  # the umask may have taken bits mkdir's mode asked for
    check_home(home)
