"""Serving: the token, host and origin guard, embedding under a prefix, prompt shutdown with
streams open, and the `runtime webserver` command as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from runtime.host.workspace import Workspace
from runtime.instance.instance import Instance
from runtime.web import create_app, is_loopback, serve
from tests.web.web_helpers import LOCATION, PIPELINE, wait_for_file, web_server
from tests.workspace.workspace_helpers import wait_until_gone

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_a_token_guards_the_api_and_pages_but_not_static_files(tmp_path: Path) -> None:
    async with web_server(tmp_path, auth_token="s3cret") as srv:
        assert (await srv.client.get("/api/locations")).status_code == 200
        async with httpx.AsyncClient(base_url=srv.url) as anonymous:
            reply = await anonymous.get("/api/locations")
            assert reply.status_code == 401
            assert reply.json()["error"]["type"] == "Unauthorized"
            assert reply.headers["www-authenticate"] == "Bearer"
            assert (
                await anonymous.get("/api/runs", headers={"authorization": "Bearer nope"})
            ).status_code == 401
            assert (await anonymous.get("/runs")).status_code == 401
            assert (await anonymous.get("/?token=wrong")).status_code == 401
            assert (await anonymous.get("/static/app.js")).status_code == 200

            login = await anonymous.get("/runs?token=s3cret")
            assert login.status_code == 303
            assert login.headers["location"] == "/runs"
            cookie = login.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie
            # The client keeps the cookie: pages and the API answer now.
            assert (await anonymous.get("/runs")).status_code == 200
            assert (await anonymous.get("/api/locations")).status_code == 200


async def test_other_hosts_and_cross_site_posts_are_refused(tmp_path: Path) -> None:
    async with web_server(tmp_path, allowed_hosts={"127.0.0.1", "localhost"}) as srv:
        client = srv.client
        assert (await client.get("/api/locations")).status_code == 200
        rebound = await client.get("/api/locations", headers={"host": "attacker.example:80"})
        assert rebound.status_code == 403
        assert "attacker.example" in rebound.json()["error"]["message"]
        cross = await client.post(
            "/api/runs", json={"job": "diamond"}, headers={"origin": "http://attacker.example"}
        )
        assert cross.status_code == 403
        assert (await client.get("/api/runs")).json() == []
        same = await client.post("/api/runs", json={"job": "diamond"}, headers={"origin": srv.url})
        assert same.status_code == 200


async def test_the_app_mounts_under_a_prefix_in_another_asgi_app(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    os.environ["WEB_TEST_DIR"] = str(tmp_path)
    async with Workspace.from_targets(
        python_files=[PIPELINE], instance=Instance.ephemeral(), restart=False
    ) as ws:
        app = create_app(ws)

        async def health(request: object) -> PlainTextResponse:
            return PlainTextResponse("ok")

        host = Starlette(routes=[Route("/health", health), Mount("/runtime", app=app)])
        async with serve(host, "127.0.0.1", 0) as at, httpx.AsyncClient(base_url=at.url) as client:
            assert (await client.get("/health")).text == "ok"
            rows = (await client.get("/runtime/api/locations")).json()
            assert [row["name"] for row in rows] == [LOCATION]
            page = await client.get("/runtime/runs")
            assert page.status_code == 200
            assert '<meta name="runtime-base" content="/runtime">' in page.text
            assert 'src="/runtime/static/app.js"' in page.text
            assert (await client.get("/runtime/static/app.js")).status_code == 200
            reply = await client.post("/runtime/api/runs", json={"job": "diamond"})
            assert reply.status_code == 200


async def test_leaving_serve_ends_open_streams_at_once(tmp_path: Path) -> None:
    control = tmp_path / "control"
    async with web_server(tmp_path) as srv:
        run_id = await srv.launch("blocked")
        await wait_for_file(control / "blocking_started")
        lines: list[str] = []
        ended = anyio.Event()

        async def follow() -> None:
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
                async with client.stream("GET", f"/api/runs/{run_id}/events") as response:
                    async for line in response.aiter_lines():
                        lines.append(line)
            ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            with anyio.fail_after(10):
                while not any(line.startswith("data:") and "STEP_START" in line for line in lines):
                    await anyio.sleep(0.02)
            srv.app.close_streams()
            with anyio.fail_after(5):
                await ended.wait()
        # The run was not finished: the stream ended because the app closed it.
        assert not any("RUN_SUCCESS" in line for line in lines)
        (control / "release").write_text("")


async def test_stopping_the_server_with_a_stream_open_does_not_wait_for_the_run(
    tmp_path: Path,
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    os.environ["WEB_TEST_DIR"] = str(control)
    async with Workspace.from_targets(
        python_files=[PIPELINE], instance=Instance.ephemeral(), restart=False, stop_grace=2.0
    ) as ws:
        app = create_app(ws)
        ended_cleanly = False
        async with httpx.AsyncClient(timeout=30) as client, anyio.create_task_group() as tg:
            # A grace far longer than this bound: only ending the streams lets it stop in time.
            with anyio.fail_after(20):
                async with serve(app, "127.0.0.1", 0, grace=30) as at:
                    reply = await client.post(f"{at.url}/api/runs", json={"job": "slow_async"})
                    run_id = reply.json()["run_id"]
                    await wait_for_file(control / "async_started")
                    opened = anyio.Event()

                    async def follow() -> None:
                        nonlocal ended_cleanly
                        path = f"{at.url}/api/runs/{run_id}/events"
                        async with client.stream("GET", path) as response:
                            opened.set()
                            async for _ in response.aiter_lines():
                                pass
                        ended_cleanly = True

                    tg.start_soon(follow)
                    await opened.wait()
        assert ended_cleanly
        # The 60 s step is still running: the server did not wait for it.
        assert (await ws.get_run(run_id)).status == "STARTED"


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("127.0.0.2")
    assert (
        not is_loopback("0.0.0.0")
        and not is_loopback("192.0.2.1")
        and not is_loopback("example.com")
    )


def _start_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", "webserver", "-f", str(PIPELINE), "--port", "0", *args],
        cwd=tmp_path,
        env={
            **os.environ,
            "RUNTIME_HOME": str(tmp_path / "home"),
            "WEB_TEST_DIR": str(tmp_path),
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _serving_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "serving on http://" in line, line + (process.stderr.read() if process.stderr else "")
    return line.split("serving on ", 1)[1].split()[0]


def _children(pid: int) -> list[int]:
    from tests.conftest import _descendants

    return _descendants(pid)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_and_stops_on_a_signal_leaving_no_process(
    tmp_path: Path, stop: signal.Signals
) -> None:
    process = _start_cli(tmp_path)
    try:
        url = _serving_url(process)
        assert url.startswith("http://127.0.0.1:")
        rows = httpx.get(f"{url}/api/locations", timeout=10).json()
        assert rows[0]["status"] == "loaded"
        run_id = httpx.post(f"{url}/api/runs", json={"job": "slow_async"}, timeout=10).json()[
            "run_id"
        ]
        assert run_id
        children = _children(process.pid)
        assert children
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
        assert wait_until_gone(children, timeout=5) == []
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_command_warns_when_exposed_and_takes_the_token_from_the_environment(
    tmp_path: Path,
) -> None:
    process = _start_cli(tmp_path, "--host", "0.0.0.0", env={"RUNTIME_WEB_TOKEN": "from-env"})
    try:
        url = _serving_url(process).replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(f"{url}/api/locations", timeout=10).status_code == 401
        authorized = httpx.get(
            f"{url}/api/locations", headers={"authorization": "Bearer from-env"}, timeout=10
        )
        assert authorized.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "warning: listening on 0.0.0.0" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_without_the_web_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
        "from runtime.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "webserver", "-f", str(PIPELINE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the web server needs starlette and uvicorn: pip install 'runtime[web]'"
    ]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runtime",
                "webserver",
                "-f",
                str(PIPELINE),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env={**os.environ, "RUNTIME_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"error: Cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
