"""Run sync user code in a daemon thread and await it from the event loop.

User code can block for as long as it likes (an import that hangs, a sensor
that busy-loops); the loop stays free for the control plane. Daemon threads,
unlike a pool's, never keep the process alive once the server has decided to
exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


async def run_sync_in_daemon_thread(fn: Callable[[], T], *, name: str) -> T:
    """Call fn() in a new daemon thread and return (or raise) what it does.

    Cancelling the caller stops waiting; the thread itself runs to its end,
    since Python threads cannot be interrupted.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle_result(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def settle_error(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop closed while fn ran
                loop.call_soon_threadsafe(settle_error, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle_result, value)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
