"""CodeLocationClient's error translation against real sockets and real servers."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from runtime.errors import CodeLocationError, ProtocolVersionError
from runtime.protocol._generated.runtime_api import CodeLocationBase, CodeLocationStub, Envelope
from runtime.protocol.auth import TOKEN_METADATA_KEY
from runtime.protocol.client import CodeLocationClient
from runtime.protocol.envelope import wrap
from runtime.protocol.messages import PROTOCOL_VERSION, PingReply
from runtime.protocol.transport import open_channel, serve
from tests.helpers_server import start_code_server

HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello_world" / "definitions.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.anyio
async def test_unreachable_tcp_server_names_the_address() -> None:
    port = _free_port()
    async with CodeLocationClient(port=port) as client:
        with pytest.raises(
            CodeLocationError, match=f"Cannot reach the code server at 127.0.0.1:{port}"
        ):
            await client.ping(timeout=5)


@pytest.mark.anyio
async def test_unreachable_unix_socket_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nobody.sock"
    async with CodeLocationClient(socket=str(path)) as client:
        with pytest.raises(CodeLocationError, match=f"Cannot reach the code server at unix:{path}"):
            await client.snapshot(timeout=5)


@pytest.mark.anyio
async def test_aclose_is_idempotent_and_final(tmp_path: Path) -> None:
    client = CodeLocationClient(socket=str(tmp_path / "x.sock"))
    await client.aclose()
    await client.aclose()
    with pytest.raises(CodeLocationError, match="is closed"):
        await client.ping()


class _OddServer(CodeLocationBase):
    """A server that speaks another protocol version, or is slow."""

    async def ping(self, envelope: Envelope) -> Envelope:
        reply = wrap(PingReply(server_id="odd"))
        return Envelope(protocol_version=PROTOCOL_VERSION + 1, payload=reply.payload)

    async def heartbeat(self, envelope: Envelope) -> Envelope:
        await anyio.sleep(5)
        return wrap(PingReply(server_id="slow"))


@pytest.mark.anyio
async def test_a_server_on_another_version_raises_protocol_version_error() -> None:
    async with serve([_OddServer()], port=0) as bound:
        async with CodeLocationClient.for_address(bound.address) as client:
            with pytest.raises(ProtocolVersionError) as caught:
                await client.ping()
    message = str(caught.value)
    assert (
        f"The code server at {bound.address} speaks protocol version {PROTOCOL_VERSION + 1}"
        in message
    )
    assert f"this process speaks version {PROTOCOL_VERSION}" in message


@pytest.mark.anyio
async def test_timeouts_raise_the_builtin_timeout_error() -> None:
    async with serve([_OddServer()], port=0) as bound:
        async with CodeLocationClient.for_address(bound.address) as client:
            with pytest.raises(TimeoutError, match="did not answer heartbeat within 0.2 s"):
                await client.heartbeat(timeout=0.2)


@pytest.mark.anyio
async def test_code_server_refuses_a_request_from_another_version(tmp_path: Path) -> None:
    """Raw generated stub, so the envelope can carry a version the client would never send."""
    socket_path = tmp_path / "s.sock"
    async with start_code_server("-f", HELLO, "--socket", str(socket_path)) as server:
        async with open_channel(path=str(socket_path)) as channel:
            assert server.auth_token is not None
            stub = CodeLocationStub(channel, metadata={TOKEN_METADATA_KEY: server.auth_token})
            odd = Envelope(protocol_version=PROTOCOL_VERSION + 7, payload=b"")
            with pytest.raises(GRPCError) as caught:
                await stub.ping(odd, timeout=5)
            with pytest.raises(GRPCError) as caught_stream:
                async for _ in stub.get_snapshot(odd, timeout=5):
                    pass
        async with server.client() as client:
            await client.ping()  # still healthy
    for error in (caught.value, caught_stream.value):
        assert error.status == Status.FAILED_PRECONDITION
        assert f"the client speaks protocol version {PROTOCOL_VERSION + 7}" in str(error.message)
        assert f"speaks version {PROTOCOL_VERSION}" in str(error.message)
