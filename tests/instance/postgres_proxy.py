"""A TCP proxy in front of a PostgreSQL server that drops a connection at a chosen moment.

The worst moment for a storage is a COMMIT whose reply never arrives: the
server committed, the client cannot know. `arm(b"COMMIT", after_reply=True)`
forwards the next client message holding that text, swallows the server's
reply and closes both sides; `after_reply=False` drops the connection before
the message reaches the server (so it surely rolls back). Connections must
disable TLS and GSS encryption (`sslmode=disable&gssencmode=disable`) for the
proxy to read the messages.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self


class DroppingProxy:
    """`async with DroppingProxy(host, port) as proxy:` listens on 127.0.0.1:`proxy.port`;
    `host` may also be a Unix-socket directory (then port names the socket file)."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._trigger: bytes | None = None
        self._after_reply = True
        self.dropped = 0
        self._stack = AsyncExitStack()
        self.port = 0

    def arm(self, trigger: bytes, *, after_reply: bool) -> None:
        """Drop the next connection that sends `trigger` (once)."""
        self._trigger = trigger
        self._after_reply = after_reply

    async def __aenter__(self) -> Self:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        group = await self._stack.enter_async_context(anyio.create_task_group())
        self._stack.callback(group.cancel_scope.cancel)

        async def serve() -> None:
            async with listener:  # closed by the task that uses it, once cancelled
                await listener.serve(self._handle)

        group.start_soon(serve)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _connect(self) -> anyio.abc.ByteStream:
        if self._host.startswith("/"):
            return await anyio.connect_unix(f"{self._host}/.s.PGSQL.{self._port}")
        return await anyio.connect_tcp(self._host, self._port)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        async with client, await self._connect() as server:
            state: dict[str, Any] = {"drop_reply": False}

            async def upstream() -> None:
                async for chunk in client:
                    trigger = self._trigger
                    if trigger is not None and trigger in chunk:
                        self._trigger = None
                        if not self._after_reply:
                            self.dropped += 1
                            group.cancel_scope.cancel()
                            return
                        state["drop_reply"] = True
                    await server.send(chunk)
                group.cancel_scope.cancel()

            async def downstream() -> None:
                async for chunk in server:
                    if state["drop_reply"]:
                        self.dropped += 1
                        group.cancel_scope.cancel()
                        return
                    await client.send(chunk)
                group.cancel_scope.cancel()

            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(upstream)
                    group.start_soon(downstream)
            except* (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # either side went away: so does the other
