"""One client, many calls at once: more than an HTTP/2 connection's 100 streams, heartbeats still answered."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.errors import CodeLocationError
from runtime.protocol import messages as m
from runtime.protocol.client import CodeLocationClient
from tests.helpers_server import start_code_server

if TYPE_CHECKING:
    from pathlib import Path

RUNS = 150


def waiting_location(tmp_path: Path) -> tuple[Path, Path]:
    """A location whose job waits until a release file exists; (location, release file)."""
    release = tmp_path / "release"
    location = tmp_path / "waiting.py"
    location.write_text(
        textwrap.dedent(
            f"""
            import os

            import anyio

            from runtime import Definitions, job, op


            @op
            async def wait_for_release() -> None:
                while not os.path.exists({str(release)!r}):
                    await anyio.sleep(0.1)


            @job
            def waits() -> None:
                wait_for_release()


            defs = Definitions(jobs=[waits])
            """
        )
    )
    return location, release


@pytest.mark.anyio
@pytest.mark.timeout(180)
async def test_150_run_streams_on_one_client_and_heartbeats_still_flow(tmp_path: Path) -> None:
    location, release = waiting_location(tmp_path)
    async with start_code_server("-f", str(location), "--socket", str(tmp_path / "s")) as server:
        async with server.client() as client:
            started: set[str] = set()
            all_started = anyio.Event()
            endings: dict[str, str] = {}

            async def run(run_id: str) -> None:
                request = m.ExecuteRunRequest(run_id=run_id, job_name="waits")
                async for event in client.execute_run(request):
                    if event.event_type == "STEP_START":
                        started.add(run_id)
                        if len(started) == RUNS:
                            all_started.set()
                    endings[run_id] = event.event_type

            async with anyio.create_task_group() as tg:
                for index in range(RUNS):
                    tg.start_soon(run, f"run-{index}")
                with anyio.fail_after(120):
                    await all_started.wait()
                # Every run is streaming now; the control plane has a connection of its own.
                for _ in range(3):
                    await client.heartbeat("test", timeout=10)
                    await client.ping(timeout=10)
                # 150 streams do not fit on one connection (the server allows 100 each).
                assert client.data_connections >= 2
                validation = await client.validate_run(
                    m.ValidateRunRequest(job_name="waits"), timeout=30
                )
                assert validation.problem is None
                release.touch()
            assert endings == {f"run-{index}": "RUN_SUCCESS" for index in range(RUNS)}
            # The extra connections closed once idle; the first stays for the next call.
            assert client.data_connections == 1


@pytest.mark.anyio
async def test_h2_errors_become_code_location_errors() -> None:
    from h2.exceptions import StreamClosedError, TooManyStreamsError

    client = CodeLocationClient(port=1)
    for error in (
        TooManyStreamsError("Max outbound streams is 100, 100 open"),
        StreamClosedError(7),
    ):
        with (
            pytest.raises(CodeLocationError) as caught,
            client._translate_errors("execute_run", None),
        ):
            raise error
        assert str(caught.value).startswith(
            "The connection to the code server at 127.0.0.1:1 could not carry execute_run: "
            f"{type(error).__name__}:"
        )
    await client.aclose()
