"""Request size limits: a message over the server's limit is refused before its body is read."""

from __future__ import annotations

import pytest

from runtime.errors import CodeLocationError
from runtime.protocol import messages as m
from runtime.protocol._generated.runtime_api import CodeLocationStub, Envelope
from runtime.protocol.auth import TOKEN_METADATA_KEY
from runtime.protocol.transport import open_channel, parse_address
from tests.helpers_server import start_code_server
from tests.server.server_helpers import HELLO

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

MiB = 1024 * 1024


def validate_request(size: int) -> m.ValidateRunRequest:
    return m.ValidateRunRequest(job_name="etl", run_config={"blob": "x" * size})


async def test_a_request_over_the_limit_is_refused_naming_the_limit_and_the_flag() -> None:
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        async with server.client() as client:
            with pytest.raises(CodeLocationError) as caught:
                await client.validate_run(validate_request(64 * MiB), timeout=60)
            # The connection and the server are fine afterwards.
            assert (await client.validate_run(m.ValidateRunRequest(job_name="nope"))).problem
            await client.ping(timeout=10)
    message = str(caught.value)
    assert (
        f"The code server at {server.address} refused validate_run (RESOURCE_EXHAUSTED)" in message
    )
    assert "the ValidateRun request is 67,108,9" in message
    assert "more than this code server accepts (4,194,304 bytes)" in message
    assert "a larger `--max-request-bytes`" in message
    assert "`max_request_bytes` in the workspace's SupervisorOptions" in message


async def test_max_request_bytes_raises_the_limit() -> None:
    args = ("-f", HELLO, "--port", "0", "--max-request-bytes", str(8 * MiB))
    async with start_code_server(*args) as server:
        async with server.client() as client:
            reply = await client.validate_run(validate_request(6 * MiB), timeout=60)
            with pytest.raises(CodeLocationError, match=r"accepts \(8,388,608 bytes\)"):
                await client.validate_run(validate_request(9 * MiB), timeout=60)
    # Decoded and validated: the job takes no `blob` config.
    assert reply.problem == "run_config"


async def test_a_payload_nested_too_deeply_is_an_invalid_argument() -> None:
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        host, port, _ = parse_address(server.address)
        assert server.auth_token is not None
        # {"job_name": "etl", "run_config": {"x": [[[[...]]]]}}, a million levels deep.
        payload = b"\x82\xa8job_name\xa3etl\xaarun_config\x81\xa1x" + b"\x91" * MiB + b"\xc0"
        async with open_channel(host=host, port=port) as channel:
            stub = CodeLocationStub(channel, metadata={TOKEN_METADATA_KEY: server.auth_token})
            from grpclib.exceptions import GRPCError

            with pytest.raises(GRPCError) as caught:
                await stub.validate_run(
                    Envelope(protocol_version=m.PROTOCOL_VERSION, payload=payload), timeout=30
                )
        async with server.client() as client:
            await client.ping(timeout=10)
    assert caught.value.status.name == "INVALID_ARGUMENT"
    assert caught.value.message == (
        "The request payload could not be decoded: it is nested too deeply."
    )


def test_a_non_positive_limit_is_refused(tmp_path: object) -> None:
    import subprocess

    from tests.helpers_server import code_server_command

    result = subprocess.run(
        code_server_command("-f", HELLO, "--socket", "/nonexistent/s", "--max-request-bytes", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--max-request-bytes must be positive, not 0." in result.stderr
