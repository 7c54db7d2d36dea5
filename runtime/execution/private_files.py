"""Files under a storage root that only their owner can write: created so, and checked so before reading.

Stored outputs are pickles, and unpickling runs code: a file another user
could have written (or replaced, through a directory they can write) is
never read. New directories are 0700 and new files 0600 whatever the umask;
a symbolic link is never followed below the root.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from runtime.errors import ExecutionError

if TYPE_CHECKING:
    from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UntrustedFileError(ExecutionError):
    """A stored file, or a directory above it, is not private to this user, so it is not used."""


def check_private_file(path: Path, root: Path) -> bool:
    """True when `path` exists and it and every directory up to `root` are private to this user;
    False when it does not exist.

    Raises UntrustedFileError naming the path when it lies outside `root`, is a
    symbolic link or no regular file, or it or a directory above it belongs to
    another user or is writable by group or others.
    """
    directory = path.parent
    check_private_dir(directory, root, missing_ok=True)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise UntrustedFileError(
            f"{path} is not a regular file; stored outputs are not read from it."
        )
    _check_owner_and_mode(path, info, "file")
    return True


def check_private_dir(directory: Path, root: Path, *, missing_ok: bool = False) -> None:
    """Check `directory` and every directory between it and `root` (both included).

    A directory that does not exist passes when `missing_ok`. Raises
    UntrustedFileError as check_private_file does.
    """
    try:
        relative = directory.relative_to(root)
    except ValueError:
        raise UntrustedFileError(
            f"{directory} is outside the storage directory {root}; nothing is read or written there."
        ) from None
    current = root
    for part in ("", *relative.parts):
        current = current / part if part else current
        try:
            # The root may be reached through a link its owner made; nothing below it may.
            info = os.stat(current) if part == "" else os.lstat(current)
        except FileNotFoundError:
            if missing_ok:
                return
            raise UntrustedFileError(f"The storage directory {current} does not exist.") from None
        if not stat.S_ISDIR(info.st_mode):
            raise UntrustedFileError(
                f"{current} is not a directory (a link or a file); stored outputs are not kept there."
            )
        _check_owner_and_mode(current, info, "directory")


def make_private_dirs(directory: Path, root: Path) -> None:
    """Create `directory` and the missing directories above it (the root included) with mode 0700,
    then check the whole chain up to `root`. Raises UntrustedFileError or OSError."""
    missing: list[Path] = []
    current = directory
    while not os.path.lexists(current):
        missing.append(current)
        if current == current.parent:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue  # another writer made it meanwhile; the check below still applies
        os.chmod(path, DIR_MODE)  # the umask may have taken bits mkdir was asked for
    check_private_dir(directory, root)


def open_private(path: Path, flags: int) -> int:
    """os.open `path` with `flags` (O_CREAT among them), mode 0600, never through a link.

    A file that already existed keeps its contents and is made 0600.
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_owner_and_mode(path: Path, info: os.stat_result, kind: str) -> None:
    if info.st_uid != os.geteuid():
        raise UntrustedFileError(
            f"The {kind} {path} belongs to user id {info.st_uid}, not to this user "
            f"({os.geteuid()}); stored outputs are not read through it."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & _OTHERS_WRITE:
        raise UntrustedFileError(
            f"The {kind} {path} has mode {mode:o}: other users may write to it, so stored "
            f"outputs are not read through it. Run `chmod go-w {path}` if you trust its contents."
        )
