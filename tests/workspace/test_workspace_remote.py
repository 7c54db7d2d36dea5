"""grpc_server locations: a code server the workspace connects to but does not own."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from runtime.workspace.config import grpc_server_spec
from tests.workspace.workspace_helpers import (
    HELLO,
    eventually,
    is_running,
    standalone_server,
    user_code,
)

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions

MORE = HELLO.replace("assets=[numbers, total]", "assets=[numbers]")


@pytest.mark.anyio
async def test_grpc_server_location_over_tcp(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    file = user_code(tmp_path, "remote.py", HELLO)
    async with standalone_server("--python-file", str(file), "--port", "0") as server:
        spec = grpc_server_spec(
            host="127.0.0.1", port=server.port, socket=None, auth_token=server.auth_token
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.location(f"127.0.0.1:{server.port}")
            assert not location.is_managed
            assert location.status == "loaded", location.error
            assert location.server_id == server.server_id
            assert location.pid == server.pid
            assert location.snapshot is not None
            assert {a.key for a in location.snapshot.assets} == {"numbers", "total"}
        # The workspace does not own a grpc_server: it is still running.
        assert is_running(server.pid)


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_grpc_server_restart_is_noticed_and_unreachable_is_an_error(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    file = user_code(tmp_path, "remote.py", HELLO)
    socket = str(tmp_path / "remote.sock")
    spec = grpc_server_spec(host="localhost", port=None, socket=socket, location_name="remote")
    async with standalone_server("--python-file", str(file), "--socket", socket) as first:
        ws = Workspace.from_specs([spec], options=fast_options)
        async with ws:
            location = ws.location("remote")
            assert location.status == "loaded", location.error
            assert location.server_id == first.server_id
            first.process.terminate()
            await first.process.wait()
            await eventually(lambda: location.status == "error", 10)
            assert location.error is not None
            assert socket in location.error.message and "reach" in location.error.message
            assert location.pid is None

            # Back, with other code: retried with backoff, and the new snapshot is fetched.
            file.write_text(MORE)
            async with standalone_server("--python-file", str(file), "--socket", socket) as second:
                await eventually(lambda: location.status == "loaded", 10)
                assert location.server_id == second.server_id
                assert location.snapshot is not None
                assert {a.key for a in location.snapshot.assets} == {"numbers"}
                # reload() refreshes at once.
                await ws.reload("remote")
                assert location.status == "loaded" and location.server_id == second.server_id
                assert location.history[-2][0] == "reloading"


@pytest.mark.anyio
async def test_unreachable_grpc_server_names_the_address(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    missing = str(tmp_path / "nobody-listens.sock")
    options = dataclasses.replace(fast_options, startup_timeout=5.0)
    async with Workspace.from_targets(grpc_servers=[missing], options=options) as ws:
        (location,) = ws.locations.values()
        assert location.status == "error"
        assert location.error is not None
        assert missing in location.error.message
        # Retried with backoff; still down for the same reason is not a new change.
        await anyio.sleep(1.0)
        assert [status for status, _ in location.history] == ["loading", "error"]


@pytest.mark.anyio
async def test_ssl_flag_makes_the_connection_tls(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    # The standalone server speaks plaintext, so a TLS client cannot talk to it:
    # the location is in error (naming the address) instead of loading.
    file = user_code(tmp_path, "plain.py", HELLO)
    async with standalone_server("--python-file", str(file), "--port", "0") as server:
        spec = grpc_server_spec(
            host="127.0.0.1",
            port=server.port,
            socket=None,
            ssl=True,
            location_name="tls",
            auth_token=server.auth_token,
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.location("tls")
            assert location.status == "error"
            assert location.error is not None
            assert f"127.0.0.1:{server.port}" in location.error.message
            assert "SSL" in location.error.message
