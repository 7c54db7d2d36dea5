"""The one event loop the runtime runs on: asyncio, because grpclib is asyncio-only."""

from __future__ import annotations

import asyncio

from runtime.errors import RuntimeFrameworkError

__all__ = ["require_asyncio"]


def require_asyncio(what: str) -> None:
    """Raise RuntimeFrameworkError, naming `what` and the loop in use, unless asyncio runs here.

    Called on entry by the objects that talk gRPC or run storage threads, so a
    host under another anyio backend (trio) gets one sentence instead of an
    ExceptionGroup that ends in "no running event loop" deep inside grpclib.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return
    raise RuntimeFrameworkError(
        f"{what} needs an asyncio event loop, but {_running_library()}: the runtime talks "
        "to its code servers with grpclib, which is asyncio-only. Run it with "
        "`anyio.run(main)` (or `backend='asyncio'`) or `asyncio.run(main())`."
    )


def _running_library() -> str:
    import importlib

    try:
        # Installed wherever trio is (it depends on it); optional otherwise.
        sniffio = importlib.import_module("sniffio")
    except ImportError:
        return "no asyncio loop is running"
    try:
        return f"it is running under {sniffio.current_async_library()}"
    except sniffio.AsyncLibraryNotFoundError:
        return "no asyncio loop is running"
