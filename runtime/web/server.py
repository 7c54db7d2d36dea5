"""serve: run an ASGI app with uvicorn inside the caller's event loop, with no signal handlers.

    async with serve(app, "127.0.0.1", 0) as server:
        print(server.url)          # the port actually bound
        await anyio.sleep_forever()

Leaving the block ends the app's event streams, stops accepting connections,
lets requests in flight finish (for at most `grace` seconds) and returns.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import uvicorn

from runtime.errors import RuntimeFrameworkError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from anyio.abc import TaskStatus
    from starlette.types import ASGIApp

logger = logging.getLogger("runtime.web")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServingAt:
    """Where a served app listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for localhost and addresses of the loopback range."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    """uvicorn's server minus its signal handlers (the process is the caller's), telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


@asynccontextmanager
async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    grace: float = 3.0,
    access_log: bool = False,
    sock: socket.socket | None = None,
) -> AsyncIterator[ServingAt]:
    """Serve `app` on host:port (port 0 picks a free one) until the block is left.

    `sock`, from `bind()`, is a listening socket to use instead (so a command can
    claim its port before slower start-up work). Raises RuntimeFrameworkError
    when the address cannot be bound (in use, not this machine's). Installs no
    signal handlers and configures no logging.
    """
    if sock is None:
        sock = bind(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        lifespan="off",
        interface="asgi3",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=int(max(1, grace)),
    )
    server = _Server(config)
    at = ServingAt(host=host, port=int(sock.getsockname()[1]))
    stopped = anyio.Event()

    async def run(*, task_status: TaskStatus[None]) -> None:
        try:
            async with anyio.create_task_group() as inner:

                async def report_listening() -> None:
                    await server.listening.wait()
                    task_status.started()

                inner.start_soon(report_listening)
                await server.serve([sock])
                inner.cancel_scope.cancel()
        finally:
            stopped.set()
            sock.close()

    async with anyio.create_task_group() as tg:
        await tg.start(run)
        try:
            yield at
        finally:
            close_streams = getattr(app, "close_streams", None)
            if close_streams is not None:
                close_streams()
            server.should_exit = True
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(grace + 1):
                    await stopped.wait()
                if not stopped.is_set():
                    logger.warning(
                        "The web server did not stop within %.0f s; closing it.", grace + 1
                    )
                    server.force_exit = True
                    with anyio.move_on_after(1):
                        await stopped.wait()
                    tg.cancel_scope.cancel()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; RuntimeFrameworkError naming the address if that fails."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RuntimeFrameworkError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise RuntimeFrameworkError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    return sock
