"""What a code server checks of every request before its handler sees it: the token, the size.

grpclib (0.4) has no receive limit of its own: it reads whatever length a
message's 5-byte prefix announces. The guard looks at that prefix and refuses
a message over the limit with RESOURCE_EXHAUSTED before reading its body, so
a 64 MiB request costs the server at most one HTTP/2 window of buffered data.
An RPC without the right token is refused with UNAUTHENTICATED before any of
its messages are read.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError

from runtime.protocol.auth import TOKEN_ENV_VAR, token_problem
from runtime.protocol.messages import DEFAULT_MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    import grpclib.server
    from grpclib._typing import IServerMethodFunc
    from grpclib.server import Server

    from runtime.protocol.auth import AuthToken

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "RequestGuard", "rpc_name"]

# The length-prefixed message framing of gRPC: a compressed flag and a big-endian length.
_PREFIX = struct.Struct(">?I")


def rpc_name(method_name: str) -> str:
    """`ValidateRun` for `/runtime_api.CodeLocation/ValidateRun`."""
    return method_name.rsplit("/", 1)[-1]


class RequestGuard:
    """Refuses requests without the right token and messages over `max_request_bytes`.

    `auth_token` None accepts every caller (a Unix socket only its owner can
    open). `limit_hint` ends the RESOURCE_EXHAUSTED message: how to raise the limit.
    """

    def __init__(
        self,
        *,
        auth_token: AuthToken | None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        limit_hint: str = "",
    ) -> None:
        if max_request_bytes <= 0:
            raise ValueError(f"max_request_bytes must be positive, not {max_request_bytes}.")
        self.auth_token = auth_token
        self.max_request_bytes = max_request_bytes
        self.limit_hint = limit_hint

    def attach(self, server: Server) -> None:
        """Check every request `server` receives from now on."""
        listen(server, RecvRequest, self._on_request)

    async def _on_request(self, event: RecvRequest) -> None:
        rpc = rpc_name(event.method_name)
        if self.auth_token is not None:
            problem = token_problem(self.auth_token, event.metadata)
            if problem is not None:
                raise GRPCError(
                    Status.UNAUTHENTICATED,
                    f"the {rpc} request carried {problem} and this code server requires its "
                    f"token; give the client the server's token (`auth_token` of the "
                    f"grpc_server location, or {TOKEN_ENV_VAR}).",
                )
        event.method_func = self._bounded(event.method_func, rpc)

    def _bounded(self, handler: IServerMethodFunc, rpc: str) -> IServerMethodFunc:
        async def bounded(stream: grpclib.server.Stream[Any, Any]) -> None:
            _limit_messages(stream, self.max_request_bytes, self._too_large(rpc))
            await handler(stream)

        return bounded

    def _too_large(self, rpc: str) -> Callable[[int], GRPCError]:
        def error(size: int) -> GRPCError:
            message = (
                f"the {rpc} request is {size:,} bytes, more than this code server accepts "
                f"({self.max_request_bytes:,} bytes)"
            )
            hint = f"; {self.limit_hint}" if self.limit_hint else ""
            return GRPCError(Status.RESOURCE_EXHAUSTED, f"{message}{hint}.")

        return error


def _limit_messages(
    stream: grpclib.server.Stream[Any, Any], limit: int, error: Callable[[int], GRPCError]
) -> None:
    """Make the stream refuse, from its prefix, any message longer than `limit` bytes.

    grpclib's recv_message reads a 5-byte prefix, then exactly the length it
    announces, strictly alternating; the wrapper checks each prefix as it
    passes. (The protocol stream is grpclib's internal object: this is the one
    place that reaches into it.)
    """
    h2_stream = stream._stream
    receive = h2_stream.recv_data
    expecting_prefix = True

    async def recv_data(size: int) -> bytes:
        nonlocal expecting_prefix
        data = await receive(size)
        if expecting_prefix and size == _PREFIX.size and len(data) == _PREFIX.size:
            _, length = _PREFIX.unpack(data)
            if length > limit:
                raise error(length)
            expecting_prefix = False
        else:
            expecting_prefix = True
        return data

    h2_stream.recv_data = recv_data  # type: ignore[method-assign]
