"""Server-Sent Events: a response that streams messages until its source ends, the client
leaves, or the app closes its streams.

The app's `closing` event ends every stream at once, so a server that is
shutting down does not wait for the length of a run (uvicorn waits for every
open response before it stops).
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.responses import Response

from runtime.errors import RuntimeFrameworkError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.types import Receive, Scope, Send

logger = logging.getLogger("runtime.web")

# A comment line this often keeps proxies and browsers from timing the stream out.
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Message:
    """One SSE message: `data` is one line of JSON; `event` names it (None: the default "message")."""

    data: bytes
    id: int | None = None
    event: str | None = None

    def encode(self) -> bytes:
        lines = []
        if self.id is not None:
            lines.append(b"id: %d" % self.id)
        if self.event is not None:
            lines.append(b"event: " + self.event.encode())
        lines.append(b"data: " + self.data)
        return b"\n".join(lines) + b"\n\n"


class EventStreamResponse(Response):
    """Streams `source` as `text/event-stream`; ends with it, on disconnect, or when `closing` is set."""

    media_type = "text/event-stream"

    def __init__(
        self,
        source: AsyncGenerator[Message, None],
        closing: anyio.Event,
        *,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        super().__init__(
            content=None,
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
        # A stream has no length: the Response base class would have said 0.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._source = source
        self._closing = closing
        self._keepalive = keepalive
        self._send_lock = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, send, tg.cancel_scope)
            tg.start_soon(self._until_disconnect, receive, tg.cancel_scope)
            tg.start_soon(self._until_closing, tg.cancel_scope)
            tg.start_soon(self._keep_alive, send)
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client is gone

    async def _produce(self, send: Send, scope: anyio.CancelScope) -> None:
        try:
            async with aclosing(self._source) as source:
                async for message in source:
                    async with self._send_lock:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": message.encode(),
                                "more_body": True,
                            }
                        )
        except RuntimeFrameworkError as exc:
            # The workspace or its instance closed under the stream: it just ends.
            logger.debug("event stream ended: %s", exc)
        except OSError:
            pass  # the client went away mid-write
        scope.cancel()

    async def _until_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _until_closing(self, scope: anyio.CancelScope) -> None:
        await self._closing.wait()
        scope.cancel()

    async def _keep_alive(self, send: Send) -> None:
        while True:
            await anyio.sleep(self._keepalive)
            async with self._send_lock:
                try:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b": keepalive\n\n",
                            "more_body": True,
                        }
                    )
                except OSError:
                    return  # the client is gone; the disconnect ends the stream
