"""CodeLocationClient: the host's typed view of one code server.

Every RPC takes an optional `timeout` in seconds and returns decoded payload
structs. grpclib's and h2's exceptions never escape: an unreachable server
raises CodeLocationError naming its address (so does a refused token), a
protocol version mismatch (in either direction) ProtocolVersionError naming
both versions, and an expired timeout the builtin TimeoutError. Control calls
and data calls travel on separate connections (runtime.protocol.channel_pool),
so heartbeats get through however many runs are streaming.
"""

# The `timeout` parameters are gRPC deadlines handed to the server with the
# request, not local cancel scopes, so ASYNC109's advice does not apply.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, TypeVar

from runtime.errors import CodeLocationError, ProtocolVersionError
from runtime.gc_pause import gc_paused
from runtime.protocol import messages as m
from runtime.protocol.auth import AuthToken
from runtime.protocol.channel_pool import ChannelPool
from runtime.protocol.envelope import decode_payload, join_chunks, unwrap, wrap
from runtime.protocol.transport import format_address, parse_address

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from types import TracebackType

    import msgspec
    from grpclib.client import Channel

    from runtime.protocol._generated.runtime_api import Chunk, CodeLocationStub, Envelope

T = TypeVar("T")

_ping_reply = m.decoder(m.PingReply)
_heartbeat_reply = m.decoder(m.HeartbeatReply)
_server_info = m.decoder(m.ServerInfo)
_snapshot = m.decoder(m.Snapshot)
_shutdown_reply = m.decoder(m.ShutdownReply)
_event_batch = m.decoder(m.EventBatch)
_cancel_reply = m.decoder(m.CancelRunReply)
_validate_reply = m.decoder(m.ValidateRunReply)
_tick_result = m.decoder(m.TickResult)

# The server answers a request from another protocol version with this status
# (and a message naming both versions); no other condition uses it.
VERSION_MISMATCH_STATUS_NAME = "FAILED_PRECONDITION"


class CodeLocationClient:
    """A connection to one code server, over TCP (`host`, `port`) or a Unix `socket`.

    Use as `async with CodeLocationClient(port=4000) as client: await client.ping()`.
    Connections open on the first call; `aclose()` closes them and is safe to
    call twice. `auth_token`, when given, is sent with every call.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        socket: str | None = None,
        ssl: bool = False,
        auth_token: AuthToken | str | None = None,
    ) -> None:
        if (port is None) == (socket is None):
            raise ValueError("CodeLocationClient needs exactly one of port and socket.")
        if socket is not None and host is not None:
            raise ValueError("CodeLocationClient takes a host with a port, not with a socket.")
        self._host = host or ("127.0.0.1" if port is not None else None)
        self._port = port
        self._socket = socket
        self._ssl = ssl
        token = AuthToken(auth_token) if isinstance(auth_token, str) else auth_token
        self._metadata = token.metadata() if token is not None else None
        self.address = format_address(host=self._host, port=port, path=socket)
        self._pool = ChannelPool(self._new_channel)
        self._closed = False

    @classmethod
    def for_address(
        cls, address: str, *, ssl: bool = False, auth_token: AuthToken | str | None = None
    ) -> CodeLocationClient:
        """A client for an address as printed in a code server's ready line."""
        host, port, socket = parse_address(address)
        return cls(host, port, socket=socket, ssl=ssl, auth_token=auth_token)

    @property
    def data_connections(self) -> int:
        """How many connections carry data calls (run streams, validations, snapshots) now."""
        return self._pool.data_channels

    async def __aenter__(self) -> CodeLocationClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections; later calls raise CodeLocationError. Idempotent."""
        self._closed = True
        self._pool.close()

    def _new_channel(self) -> Channel:
        from grpclib.client import Channel

        from runtime.protocol.tls import client_context

        return Channel(
            host=self._host,
            port=self._port,
            path=self._socket,
            ssl=client_context() if self._ssl else None,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise CodeLocationError(f"The client for the code server at {self.address} is closed.")

    def _stub(self, channel: Channel) -> CodeLocationStub:
        from runtime.protocol._generated.runtime_api import CodeLocationStub

        return CodeLocationStub(channel, metadata=self._metadata)

    def _control_stub(self) -> CodeLocationStub:
        self._check_open()
        return self._stub(self._pool.control())

    @contextlib.contextmanager
    def _data_stub(self) -> Iterator[CodeLocationStub]:
        """A stub on a data connection with room, for the length of one call."""
        self._check_open()
        with self._pool.data() as channel:
            yield self._stub(channel)

    @property
    def _peer(self) -> str:
        return f"The code server at {self.address}"

    @contextlib.contextmanager
    def _translate_errors(self, rpc: str, timeout: float | None) -> Iterator[None]:
        """Map grpclib and socket failures of one RPC onto this package's exceptions."""
        with _withdraw_stray_cancels(), self._map_errors(rpc, timeout):
            yield

    @contextlib.contextmanager
    def _map_errors(self, rpc: str, timeout: float | None) -> Iterator[None]:
        from grpclib.exceptions import GRPCError, StreamTerminatedError
        from grpclib.exceptions import ProtocolError as GrpclibProtocolError
        from h2.exceptions import H2Error

        try:
            yield
        except GRPCError as exc:
            status = exc.status.name
            detail = exc.message or "no message"
            if status == VERSION_MISMATCH_STATUS_NAME:
                raise ProtocolVersionError(f"{self._peer} rejected {rpc}: {detail}") from exc
            if status == "DEADLINE_EXCEEDED":
                raise TimeoutError(
                    f"{self._peer} did not answer {rpc} within {timeout} s."
                ) from exc
            verb = "refused" if status in ("UNAUTHENTICATED", "RESOURCE_EXHAUSTED") else "failed"
            raise CodeLocationError(f"{self._peer} {verb} {rpc} ({status}): {detail}") from exc
        except TimeoutError as exc:  # grpclib's client-side deadline (asyncio.TimeoutError)
            raise TimeoutError(f"{self._peer} did not answer {rpc} within {timeout} s.") from exc
        except (
            ConnectionError,
            FileNotFoundError,
            StreamTerminatedError,
            GrpclibProtocolError,
        ) as exc:
            raise CodeLocationError(
                f"Cannot reach the code server at {self.address} ({rpc}): {exc or type(exc).__name__}."
            ) from exc
        except H2Error as exc:
            # HTTP/2 refusing the call itself (too many streams, a closed stream).
            raise CodeLocationError(
                f"The connection to the code server at {self.address} could not carry {rpc}: "
                f"{type(exc).__name__}: {exc or 'no detail'}."
            ) from exc
        except OSError as exc:
            raise CodeLocationError(
                f"Cannot reach the code server at {self.address} ({rpc}): {exc}."
            ) from exc

    async def _unary(
        self,
        rpc: str,
        request: m.Message,
        decoder: msgspec.msgpack.Decoder[T],
        timeout: float | None,
        *,
        control: bool = False,
    ) -> T:
        """Call a unary RPC by its stub method name and decode the reply after the version check.

        `control` calls travel on the control connection, the others on a data connection.
        """
        reply: Envelope
        if control:
            stub = self._control_stub()
            with self._translate_errors(rpc, timeout):
                reply = await getattr(stub, rpc)(wrap(request), timeout=timeout)
        else:
            with self._data_stub() as stub, self._translate_errors(rpc, timeout):
                reply = await getattr(stub, rpc)(wrap(request), timeout=timeout)
        return unwrap(reply, decoder, peer=self._peer)

    async def ping(self, echo: str = "", *, timeout: float | None = None) -> m.PingReply:
        """Round-trip to the server's control plane."""
        return await self._unary(
            "ping", m.PingRequest(echo=echo), _ping_reply, timeout, control=True
        )

    async def heartbeat(
        self, sender: str = "", *, timeout: float | None = None
    ) -> m.HeartbeatReply:
        """Keep a server started with --heartbeat alive."""
        return await self._unary(
            "heartbeat", m.HeartbeatRequest(sender=sender), _heartbeat_reply, timeout, control=True
        )

    async def server_info(self, *, timeout: float | None = None) -> m.ServerInfo:
        """Server id, pid, versions, location name and load status."""
        return await self._unary(
            "get_server_info", m.ServerInfoRequest(), _server_info, timeout, control=True
        )

    async def snapshot(self, *, timeout: float | None = None) -> m.Snapshot:
        """The location's definitions (or its load error), reassembled from the chunk stream.

        Waits for a lazily loading server to finish loading.
        """
        chunks: list[Chunk] = []
        with self._data_stub() as stub, self._translate_errors("get_snapshot", timeout):
            async for chunk in stub.get_snapshot(wrap(m.SnapshotRequest()), timeout=timeout):
                chunks.append(chunk)
        with gc_paused():
            return decode_payload(join_chunks(chunks, peer=self._peer), _snapshot, peer=self._peer)

    async def shutdown(
        self, grace_seconds: float = 0.0, *, timeout: float | None = None
    ) -> m.ShutdownReply:
        """Ask the server to exit, letting in-flight runs finish for up to grace_seconds."""
        return await self._unary(
            "shutdown",
            m.ShutdownRequest(grace_seconds=grace_seconds),
            _shutdown_reply,
            timeout,
            control=True,
        )

    async def validate_run(
        self, request: m.ValidateRunRequest, *, timeout: float | None = None
    ) -> m.ValidateRunReply:
        """Check that a run could be launched; what is wrong is in the reply, not raised."""
        return await self._unary("validate_run", request, _validate_reply, timeout)

    async def execute_run(
        self, request: m.ExecuteRunRequest, *, timeout: float | None = None
    ) -> AsyncIterator[m.RunEvent]:
        """Execute a run in the server's process and yield its events as they happen."""
        with self._data_stub() as stub, self._translate_errors("execute_run", timeout):
            async for envelope in stub.execute_run(wrap(request), timeout=timeout):
                batch = unwrap(envelope, _event_batch, peer=self._peer)
                for event in batch.events:
                    yield event

    async def cancel_run(self, run_id: str, *, timeout: float | None = None) -> m.CancelRunReply:
        """Ask the server to cancel a run it is executing."""
        return await self._unary(
            "cancel_run", m.CancelRunRequest(run_id=run_id), _cancel_reply, timeout, control=True
        )

    async def evaluate_schedule(
        self, request: m.EvaluateScheduleRequest, *, timeout: float | None = None
    ) -> m.TickResult:
        """Evaluate one schedule tick in the server; a user-code error is in TickResult.error."""
        return await self._unary("evaluate_schedule", request, _tick_result, timeout)

    async def evaluate_sensor(
        self, request: m.EvaluateSensorRequest, *, timeout: float | None = None
    ) -> m.TickResult:
        """Evaluate one sensor tick in the server; a user-code error is in TickResult.error."""
        return await self._unary("evaluate_sensor", request, _tick_result, timeout)


@contextlib.contextmanager
def _withdraw_stray_cancels() -> Iterator[None]:
    """Undo the cancellation requests grpclib leaves on the caller's task.

    grpclib wakes a call cut off by a lost connection with `task.cancel()`
    and then raises its own error instead of CancelledError, so the request
    is never withdrawn; the caller's cancel scopes (anyio's, asyncio.timeout)
    would later misread it as their own. A real cancellation still propagates.
    """
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException:
        if task is not None:
            while task.cancelling() > before:
                task.uncancel()
        raise
