"""The host's side of code-server security: tokens, storage roots, and a location under load."""

from __future__ import annotations

import dataclasses
import os
import stat
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from runtime.protocol.auth import TOKEN_ENV_VAR, AuthToken
from runtime.protocol.client import CodeLocationClient
from runtime.workspace.config import grpc_server_spec, load_workspace_yaml
from tests.workspace.workspace_helpers import HELLO, eventually, standalone_server, user_code

if TYPE_CHECKING:
    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio

FLAKY_ONCE = """
import os
from runtime import Definitions, asset

@asset
def numbers() -> list[int]:
    return [1, 2, 3]

@asset
def total(numbers: list[int]) -> int:
    if not os.path.exists({flag!r}):
        raise RuntimeError("not yet")
    return sum(numbers)

defs = Definitions(assets=[numbers, total])
"""


@pytest.mark.parametrize(("token", "problem"), [(None, "no"), ("nope", "a wrong")])
async def test_a_grpc_server_refusing_the_token_is_an_error_naming_address_and_problem(
    tmp_path: Path,
    fast_options: SupervisorOptions,
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    problem: str,
) -> None:
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    file = user_code(tmp_path, "remote.py", HELLO)
    async with standalone_server("--python-file", str(file), "--port", "0") as server:
        spec = grpc_server_spec(
            host="127.0.0.1",
            port=server.port,
            socket=None,
            location_name="remote",
            auth_token=token,
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.locations["remote"]
            assert location.status == "error"
            assert location.error is not None
            message = location.error.message
            assert message.startswith(
                f"location 'remote': The code server at 127.0.0.1:{server.port} refused "
                "get_server_info (UNAUTHENTICATED): "
            )
            assert f"carried {problem} auth token" in message
            assert str(server.auth_token) not in location.error.describe()
            with pytest.raises(CodeLocationError, match="UNAUTHENTICATED"):
                await ws.launch_run(job="greet", location="remote")


async def test_a_grpc_server_location_sends_the_environments_token_by_default(
    tmp_path: Path, fast_options: SupervisorOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = user_code(tmp_path, "remote.py", HELLO)
    async with standalone_server("--python-file", str(file), "--port", "0") as server:
        assert server.auth_token is not None
        monkeypatch.setenv(TOKEN_ENV_VAR, server.auth_token)
        async with Workspace.from_targets(
            grpc_servers=[f"127.0.0.1:{server.port}"], options=fast_options
        ) as ws:
            (location,) = ws.locations.values()
            assert location.status == "loaded", location.error


def test_workspace_yaml_takes_the_token_from_the_environment_or_as_a_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_TOKEN", "from-env")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        textwrap.dedent(
            """
            load_from:
              - grpc_server: {port: 4000, location_name: a, auth_token: {env: TEAM_TOKEN}}
              - grpc_server: {port: 4001, location_name: b, auth_token: written-here}
              - grpc_server: {port: 4002, location_name: c}
            """
        )
    )
    a, b, c = load_workspace_yaml(workspace)
    assert a.auth_token == AuthToken("from-env")
    assert b.auth_token == AuthToken("written-here")
    assert c.auth_token is None
    assert "from-env" not in repr(a) and "written-here" not in repr(b)


async def test_managed_servers_get_their_own_token_by_environment_never_on_argv(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    first = user_code(tmp_path, "first.py", HELLO)
    second = user_code(tmp_path, "second.py", HELLO)
    async with Workspace.from_targets(python_files=[first, second], options=fast_options) as ws:
        tokens = []
        for location in ws.locations.values():
            assert location.status == "loaded", location.error
            assert location.server is not None and location.server.process is not None
            process = location.server.process
            assert process.auth_token is not None
            tokens.append(process.auth_token.value)
            argv = Path(f"/proc/{process.pid}/cmdline").read_bytes()
            assert process.auth_token.value.encode() not in argv
            # A private socket in a private directory, and still no call without the token.
            socket = Path(process.socket_path)
            assert stat.S_IMODE(socket.stat().st_mode) == 0o600
            assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
            async with CodeLocationClient(socket=str(socket)) as anonymous:
                with pytest.raises(CodeLocationError, match="carried no auth token"):
                    await anonymous.ping(timeout=10)
        assert len(set(tokens)) == 2


async def test_managed_runs_store_privately_under_the_instance_and_re_execute(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    home = tmp_path / "home"
    flag = tmp_path / "flag"
    file = user_code(tmp_path, "flaky.py", FLAKY_ONCE.format(flag=str(flag)))
    instance = Instance.from_home(home)
    async with Workspace.from_targets(
        python_files=[file], options=fast_options, instance=instance
    ) as ws:
        # Loading created nothing: the path is the instance's, made on the first write.
        assert ws.options.storage_dir == str(instance.artifacts_dir)
        assert not home.exists()
        failed = await (await ws.launch_run(job="__ASSET_JOB")).wait()
        assert failed.status == "FAILURE"
        flag.touch()
        again = await ws.reexecute(failed.run_id)
        assert (await again.wait()).status == "SUCCESS"
    storage = instance.artifacts_dir
    assert (storage / failed.run_id / "outputs.log").is_file()
    assert (storage / again.run_id / "outputs.log").is_file()
    for path in [storage, *storage.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


@pytest.mark.timeout(300)
async def test_150_runs_at_once_in_one_location_all_succeed_and_heartbeats_flow(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    runs = 150
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    file = user_code(
        tmp_path,
        "waiting.py",
        f"""
        import os

        import anyio

        from runtime import Definitions, job, op


        @op
        async def wait_for_release(context) -> None:
            open(os.path.join({str(started)!r}, context.run_id), "w").close()
            while not os.path.exists({str(release)!r}):
                await anyio.sleep(0.1)


        @job
        def waits() -> None:
            wait_for_release()


        defs = Definitions(jobs=[waits])
        """,
    )
    # Short heartbeats: a server whose heartbeats stall exits within seconds.
    options = dataclasses.replace(fast_options, heartbeat_timeout=3.0)
    async with Workspace.from_targets(
        python_files=[file], options=options, instance=Instance.ephemeral()
    ) as ws:
        (location,) = ws.locations.values()
        assert location.status == "loaded", location.error
        pid = location.pid
        handles = [await ws.launch_run(job="waits") for _ in range(runs)]
        await eventually(lambda: len(os.listdir(started)) == runs, 180)
        # Longer than the heartbeat timeout with every run streaming at once.
        await anyio.sleep(options.heartbeat_timeout * 2)
        assert location.status == "loaded" and location.pid == pid
        assert location.server is not None
        await location.server.client.heartbeat("test", timeout=5)
        release.touch()
        results = [await handle.wait() for handle in handles]
    assert [result.status for result in results] == ["SUCCESS"] * runs


async def test_a_managed_locations_request_limit_is_a_setting(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    file = user_code(tmp_path, "hello.py", HELLO)
    options = dataclasses.replace(fast_options, max_request_bytes=64 * 1024)
    async with Workspace.from_targets(
        python_files=[file], options=options, instance=Instance.ephemeral()
    ) as ws:
        with pytest.raises(CodeLocationError) as caught:
            await ws.launch_run(job="greet", run_config={"x": "y" * 100_000})
        assert (await (await ws.launch_run(job="greet")).wait()).status == "SUCCESS"
    assert "more than this code server accepts (65,536 bytes)" in str(caught.value)
