"""Where a code server keeps run outputs: a storage root of its own choosing, never the client's.

The root comes from the server's configuration only (`--storage-dir`; a
managed location's host passes its instance's artifacts directory). Run ids
that reach file names are plain ids, checked here before anything touches
the disk, so a request cannot point the server at another directory.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# Letters, digits, '-', '_' and '.', starting with a letter or digit: a uuid,
# "r1", "nightly.2024-01-01". No separators, so never a path of its own.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class StorageRootError(ValueError):
    """The configured storage root cannot be used safely; the message names it and why."""


def check_plain_id(value: str, what: str) -> str | None:
    """Why `value` is not a plain id (a sentence naming `what`); None when it is one."""
    if _PLAIN_ID.fullmatch(value) is None or ".." in value:
        return (
            f"{what} {value!r} is not a plain id: use 1 to 128 letters, digits, '-', '_' "
            "or '.', starting with a letter or digit, with no '..'"
        )
    return None


def resolve_storage_root(value: str) -> str:
    """The absolute storage root for `--storage-dir value`, checked but not created.

    Raises StorageRootError when it exists and is not a directory, or is not
    owned by this user, or other users may write to it (they could plant the
    outputs a re-execution unpickles).
    """
    root = Path(value).expanduser().absolute()
    try:
        info = root.stat()
    except FileNotFoundError:
        return str(root)  # created, private, on the first write
    except OSError as exc:
        raise StorageRootError(
            f"The storage directory {root} cannot be read: {exc.strerror}."
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise StorageRootError(f"The storage directory {root} exists and is not a directory.")
    if info.st_uid != os.geteuid():
        raise StorageRootError(
            f"The storage directory {root} belongs to user id {info.st_uid}, not to this user "
            f"({os.geteuid()}); use a directory of your own."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StorageRootError(
            f"The storage directory {root} has mode {mode:o}: other users may write to it. "
            f"Run `chmod 700 {root}` or use another directory."
        )
    return str(root)
