"""The shared secret: every RPC without the right token is refused, and the token stays secret."""

from __future__ import annotations

import os
import subprocess
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.protocol import messages as m
from runtime.protocol.auth import TOKEN_ENV_VAR, AuthToken, read_token_file, token_problem
from runtime.protocol.client import CodeLocationClient
from tests.helpers_server import code_server_command, start_code_server
from tests.server.server_helpers import HELLO

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)

# Every RPC of the service, as a client calls it.
EVERY_RPC: list[tuple[str, Callable[[CodeLocationClient], Awaitable[object]]]] = [
    ("Ping", lambda c: c.ping(timeout=10)),
    ("Heartbeat", lambda c: c.heartbeat(timeout=10)),
    ("GetServerInfo", lambda c: c.server_info(timeout=10)),
    ("GetSnapshot", lambda c: c.snapshot(timeout=10)),
    ("ValidateRun", lambda c: c.validate_run(m.ValidateRunRequest(job_name="etl"), timeout=10)),
    (
        "ExecuteRun",
        lambda c: _drain(c.execute_run(m.ExecuteRunRequest(run_id="r", job_name="etl"))),
    ),
    ("CancelRun", lambda c: c.cancel_run("r", timeout=10)),
    (
        "EvaluateSchedule",
        lambda c: c.evaluate_schedule(
            m.EvaluateScheduleRequest(schedule_name="s", scheduled_time=0.0), timeout=10
        ),
    ),
    (
        "EvaluateSensor",
        lambda c: c.evaluate_sensor(m.EvaluateSensorRequest(sensor_name="s"), timeout=10),
    ),
    ("Shutdown", lambda c: c.shutdown(timeout=10)),
]


async def _drain(events: object) -> None:
    async for _ in events:  # type: ignore[attr-defined]
        pass


def test_token_problems_are_named_and_the_value_never_shows() -> None:
    token = AuthToken("s3cret-value")
    assert token_problem(token, {"runtime-auth-token": "s3cret-value"}) is None
    assert token_problem(token, {}) == "no auth token"
    assert token_problem(token, None) == "no auth token"
    assert token_problem(token, {"runtime-auth-token": "s3cret-valuE"}) == "a wrong auth token"
    assert token_problem(token, {"runtime-auth-token": "s3cret"}) == "a wrong auth token"
    assert "s3cret" not in repr(token) and "s3cret" not in str(token)
    assert AuthToken.generate() != AuthToken.generate()
    with pytest.raises(ValueError, match="cannot be empty"):
        AuthToken("")


@pytest.mark.anyio
async def test_a_tcp_server_refuses_every_rpc_without_the_right_token() -> None:
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        refusals: dict[str, str] = {}
        for token in (None, "not-the-token"):
            for rpc, call in EVERY_RPC:
                async with CodeLocationClient.for_address(server.address, auth_token=token) as bad:
                    with pytest.raises(CodeLocationError) as caught:
                        await call(bad)
                refusals[f"{rpc} {token}"] = str(caught.value)
        # Shutdown was refused too: the server still answers the right token.
        async with server.client() as good:
            for _, call in EVERY_RPC[:-1]:
                try:
                    await call(good)
                except CodeLocationError as exc:  # no schedule "s" in this location
                    assert "NOT_FOUND" in str(exc), exc
        assert server.process.returncode is None
    for rpc, _ in EVERY_RPC:
        for token, problem in ((None, "no auth token"), ("not-the-token", "a wrong auth token")):
            message = refusals[f"{rpc} {token}"]
            assert f"The code server at {server.address} refused " in message, message
            assert f"(UNAUTHENTICATED): the {rpc} request carried {problem}" in message
            assert "not-the-token" not in message and str(server.auth_token) not in message


def test_a_tcp_server_without_a_token_does_not_start(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV_VAR}
    result = subprocess.run(
        code_server_command("-f", HELLO, "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "runtime api grpc: a code server on a TCP port needs an auth token, since any local "
        "user can reach the port: pass --auth-token-file FILE or set RUNTIME_CODE_SERVER_TOKEN "
        "(a --socket is private to its owner and needs none).\n"
    )


@pytest.mark.anyio
async def test_a_socket_server_needs_no_token_but_checks_one_when_configured(
    tmp_path: Path,
) -> None:
    open_socket = str(tmp_path / "open.sock")
    async with start_code_server(
        "-f", HELLO, "--socket", open_socket, env={TOKEN_ENV_VAR: ""}
    ) as server:
        assert server.auth_token is None
        async with CodeLocationClient(socket=open_socket) as client:
            await client.ping()
    guarded = str(tmp_path / "guarded.sock")
    async with start_code_server("-f", HELLO, "--socket", guarded) as server:
        async with CodeLocationClient(socket=guarded) as client:
            with pytest.raises(CodeLocationError, match="carried no auth token"):
                await client.ping()
        async with server.client() as client:
            await client.ping()


@pytest.mark.anyio
async def test_a_token_file_is_read_and_the_token_is_hidden_from_user_code(
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen.txt"
    location = tmp_path / "peek.py"
    location.write_text(
        textwrap.dedent(
            f"""
            import os
            from runtime import Definitions
            with open({str(seen)!r}, "w") as file:
                file.write(os.environ.get({TOKEN_ENV_VAR!r}, "<unset>"))
            defs = Definitions()
            """
        )
    )
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    token_file.chmod(0o600)
    args = ("-f", str(location), "--port", "0", "--auth-token-file", str(token_file))
    # The file wins over the environment, and the environment's copy is gone.
    async with start_code_server(*args, env={TOKEN_ENV_VAR: "from-the-environment"}) as server:
        async with CodeLocationClient.for_address(server.address, auth_token="from-the-file") as c:
            await c.ping()
        async with server.client() as wrong:
            with pytest.raises(CodeLocationError, match="carried a wrong auth token"):
                await wrong.ping()
    assert seen.read_text() == "<unset>"


@pytest.mark.parametrize(
    ("content", "mode", "problem"),
    [
        ("token", 0o644, "has mode 644: other users may read or change it. Run `chmod 600"),
        ("  \n", 0o600, "is empty; write the token into it."),
    ],
)
def test_a_token_file_others_can_read_or_an_empty_one_is_refused(
    tmp_path: Path, content: str, mode: int, problem: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content)
    token_file.chmod(mode)
    with pytest.raises(ValueError, match="auth token file") as caught:
        read_token_file(str(token_file))
    assert problem in str(caught.value)
    result = subprocess.run(
        code_server_command(
            "-f", HELLO, "--socket", str(tmp_path / "s"), "--auth-token-file", str(token_file)
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"runtime api grpc: --auth-token-file: The auth token file {token_file} "
    )
    assert problem in result.stderr and "Traceback" not in result.stderr


def test_a_missing_token_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"Cannot read the auth token file .*missing: No such file"
    ):
        read_token_file(str(tmp_path / "missing"))


@pytest.mark.anyio
async def test_an_unauthenticated_call_is_refused_before_its_message_is_read() -> None:
    # A 16 MiB request without the token: refused as unauthenticated, not read for its size.
    async with start_code_server("-f", HELLO, "--port", "0") as server:
        async with CodeLocationClient.for_address(server.address) as anonymous:
            with pytest.raises(CodeLocationError, match="UNAUTHENTICATED"):
                big = m.ValidateRunRequest(job_name="etl", run_config={"x": "a" * (16 << 20)})
                with anyio.fail_after(30):
                    await anonymous.validate_run(big)
