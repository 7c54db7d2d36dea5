"""A location that fails to load: served as data when lazy, fatal otherwise; and a hung import."""

from __future__ import annotations

import subprocess
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime.protocol.load_status import read_load_status
from runtime.protocol.ready_line import parse_ready_line
from tests.helpers_server import code_server_command, start_code_server

if TYPE_CHECKING:
    from pathlib import Path

BROKEN = """
import slow_helper

def configure():
    raise KeyError("missing_setting")

configure()
"""


def write_broken_location(tmp_path: Path) -> Path:
    (tmp_path / "slow_helper.py").write_text("import time\ntime.sleep(0.25)\n")
    path = tmp_path / "broken_location.py"
    path.write_text(textwrap.dedent(BROKEN))
    return path


@pytest.mark.anyio
async def test_lazy_load_error_is_served_by_get_snapshot(tmp_path: Path) -> None:
    path = write_broken_location(tmp_path)
    args = ("-f", str(path), "--port", "0", "--lazy-load-user-code", "--location-name", "broken")
    async with start_code_server(*args) as server:
        async with server.client() as client:
            assert (await client.ping()).server_id == server.server_id
            snapshot = await client.snapshot(timeout=20)
            info = await client.server_info()
    assert info.load_status == "error"
    assert snapshot.location_name == "broken"
    assert snapshot.jobs == [] and snapshot.assets == []
    error = snapshot.error
    assert error is not None
    assert error.type == "runtime.errors.LoadError"
    assert error.message == f"Importing file {path} raised KeyError: 'missing_setting'"
    assert error.cause is not None and error.cause.type == "KeyError"
    assert f'File "{path}", line 5, in configure' in error.traceback
    assert 'raise KeyError("missing_setting")' in error.traceback
    timings = snapshot.timings
    assert timings.slowest_modules[0].module == "slow_helper"
    assert timings.slowest_modules[0].seconds >= 0.25
    assert timings.total_seconds >= timings.import_seconds >= 0.25


def test_load_error_without_lazy_load_exits_non_zero_with_the_error(tmp_path: Path) -> None:
    path = write_broken_location(tmp_path)
    result = subprocess.run(
        code_server_command("-f", str(path), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert parse_ready_line(result.stdout) is None
    stderr = result.stderr
    assert "could not load code location 'broken_location'" in stderr
    assert f"runtime.errors.LoadError: Importing file {path} raised KeyError" in stderr
    assert 'raise KeyError("missing_setting")' in stderr
    assert "slowest imports: slow_helper" in stderr


def test_load_error_hints_reach_stderr(tmp_path: Path) -> None:
    (tmp_path / "shared_lib").mkdir()
    (tmp_path / "shared_lib" / "__init__.py").write_text("")
    (tmp_path / "jobs").mkdir()
    path = tmp_path / "jobs" / "defs.py"
    path.write_text("import shared_lib\n")
    result = subprocess.run(
        code_server_command("-f", str(path), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path / "jobs",
    )
    assert result.returncode == 1
    assert f"hint: 'shared_lib' is in {tmp_path}, which is not on sys.path" in result.stderr


@pytest.mark.anyio
async def test_a_hung_import_shows_in_the_load_status_file(tmp_path: Path) -> None:
    (tmp_path / "hangs_forever.py").write_text("import time\nwhile True:\n    time.sleep(0.05)\n")
    path = tmp_path / "hung_location.py"
    path.write_text("import hangs_forever\n")
    status_file = tmp_path / "status.json"
    command = code_server_command(
        "-f", str(path), "--port", "0", "--load-status-file", str(status_file)
    )
    async with await anyio.open_process(command) as process:
        try:
            with anyio.fail_after(20):
                while True:
                    status = read_load_status(status_file)
                    if status is not None and status.importing_module == "hangs_forever":
                        break
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            later = read_load_status(status_file)
            assert later is not None and later.importing_module == "hangs_forever"
            assert later.import_seconds >= 0.2
            # SIGTERM is honoured even while user code is stuck in its import.
            process.terminate()
            with anyio.fail_after(10):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.anyio
async def test_lazy_snapshot_waits_for_a_slow_load(tmp_path: Path) -> None:
    path = tmp_path / "slow_location.py"
    path.write_text(
        "import time\ntime.sleep(0.5)\nfrom runtime import Definitions, asset\n\n"
        "@asset\ndef late() -> int:\n    return 1\n\ndefs = Definitions(assets=[late])\n"
    )
    async with start_code_server("-f", str(path), "--port", "0", "--lazy-load-user-code") as server:
        async with server.client() as client:
            info = await client.server_info()
            assert info.load_status == "loading"
            with anyio.fail_after(0.2):
                await client.ping()
            snapshot = await client.snapshot(timeout=20)
            assert (await client.server_info()).load_status == "loaded"
    assert [a.key for a in snapshot.assets] == ["late"]
    assert snapshot.timings.import_seconds >= 0.5
