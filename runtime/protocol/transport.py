"""grpclib's lifecycle, wrapped once: a listening server and a client channel.

Both are async context managers whose exit closes and waits in a shielded
scope, so a cancelled caller still leaves no listening socket or open
connection behind. Everything else in the package uses these two.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Collection

    from grpclib._typing import IServable
    from grpclib.client import Channel
    from grpclib.server import Server

    from runtime.protocol.request_guard import RequestGuard


class ListenError(OSError):
    """The server could not bind its address (in use, no permission, socket path too long)."""


@dataclass(frozen=True)
class BoundServer:
    """A listening grpclib server and the address a client connects to."""

    server: Server
    # "host:port" for TCP, "unix:/path" for a Unix socket.
    address: str


def format_address(
    *, host: str | None = None, port: int | None = None, path: str | None = None
) -> str:
    """The printable address clients understand: `host:port`, `[v6]:port` or `unix:/path`."""
    if path is not None:
        return f"unix:{path}"
    shown = f"[{host}]" if host and ":" in host else host
    return f"{shown}:{port}"


def parse_address(address: str) -> tuple[str | None, int | None, str | None]:
    """Split an address from format_address into (host, port, socket path).

    Raises ValueError naming the address when it is neither form.
    """
    if address.startswith("unix:"):
        return None, None, address.removeprefix("unix:")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"Address {address!r} is neither 'host:port' nor 'unix:/path/to/socket'.")
    return host.strip("[]"), int(port), None


def _bind_unix(path: str) -> socket.socket:
    """A listening Unix socket at path, created with mode 0600 from the start."""
    with contextlib.suppress(FileNotFoundError):
        if os.path.exists(path) and not _is_socket(path):
            raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it.")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask closes the window between bind() creating the file and a chmod:
    # nobody else may connect to user code, not even for a moment.
    previous = os.umask(0o177)
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _is_socket(path: str) -> bool:
    import stat

    return stat.S_ISSOCK(os.stat(path).st_mode)


def _bind_tcp(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port), backlog=128, reuse_port=False)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve(
    handlers: Collection[IServable],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    path: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    guard: RequestGuard | None = None,
) -> AsyncIterator[BoundServer]:
    """Listen on TCP `host:port` (port 0 picks a free one) or on a Unix socket `path`,
    with TLS when `ssl_context` is given; `guard` checks every request's token and size.

    On exit the server stops accepting, cancels running handlers and waits for
    them, shielded from cancellation; the Unix socket file is removed. Raises
    ListenError (an OSError) naming the address when it cannot be bound.
    """
    from grpclib.server import Server

    if (port is None) == (path is None):
        raise ValueError("serve() needs exactly one of port and path.")
    try:
        sock = _bind_unix(path) if path is not None else _bind_tcp(host, port or 0)
    except OSError as exc:
        where = format_address(host=host, port=port, path=path)
        raise ListenError(f"Cannot listen on {where}: {exc.strerror or exc}.") from exc
    if path is not None:
        address = format_address(path=path)
    else:
        bound_host, bound_port = sock.getsockname()[:2]
        address = format_address(host=bound_host, port=bound_port)
    server = Server(list(handlers))
    if guard is not None:
        guard.attach(server)
    try:
        await server.start(sock=sock, ssl=ssl_context)
    except BaseException:
        sock.close()
        raise
    try:
        yield BoundServer(server=server, address=address)
    finally:
        with anyio.CancelScope(shield=True):
            server.close()
            await server.wait_closed()
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)


@contextlib.asynccontextmanager
async def open_channel(
    *,
    host: str | None = None,
    port: int | None = None,
    path: str | None = None,
    ssl: bool = False,
) -> AsyncIterator[Channel]:
    """A grpclib channel to `host:port` or Unix socket `path`; it connects on first use.

    Closed on exit, even when the caller is cancelled.
    """
    from grpclib.client import Channel

    from runtime.protocol.tls import client_context

    channel = Channel(host=host, port=port, path=path, ssl=client_context() if ssl else None)
    try:
        yield channel
    finally:
        # Synchronous: nothing here can be interrupted by a cancellation.
        channel.close()
