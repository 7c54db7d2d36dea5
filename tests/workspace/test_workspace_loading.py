"""Loading a workspace: many locations at once, broken ones beside healthy ones."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import pytest

from runtime import Workspace
from runtime.errors import CodeLocationError, WorkspaceConfigError
from runtime.workspace.config import code_location_spec
from tests.workspace.workspace_helpers import HELLO, eventually, is_running, user_code

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from runtime.workspace.options import SupervisorOptions
    from runtime.workspace.state import StatusChange


@pytest.mark.anyio
async def test_five_locations_load_concurrently(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    files = [user_code(tmp_path / f"loc{i}", f"loc{i}.py", HELLO) for i in range(5)]
    started = anyio.current_time()
    async with Workspace.from_targets(python_files=files, options=fast_options) as ws:
        elapsed = anyio.current_time() - started
        assert sorted(ws.locations) == [f"loc{i}" for i in range(5)]
        pids = set()
        for location in ws.locations.values():
            assert location.status == "loaded", location.error
            assert location.error is None
            assert location.snapshot is not None
            assert {job.name for job in location.snapshot.jobs} >= {"greet"}
            assert {asset.key for asset in location.snapshot.assets} == {"numbers", "total"}
            assert location.pid is not None and is_running(location.pid)
            assert location.server_id
            assert location.load_seconds is not None and location.load_seconds > 0
            assert [status for status, _ in location.history] == ["loading", "loaded"]
            pids.add(location.pid)
        assert len(pids) == 5
        # Concurrent: the whole takes far less than five loads one after another.
        slowest = max(loc.load_seconds or 0.0 for loc in ws.locations.values())
        assert elapsed < slowest * 3
    assert not [pid for pid in pids if is_running(pid)]
    no_processes_left()


BROKEN = {
    "syntax": ("def broken(:\n    pass\n", "SyntaxError"),
    "raises": ("raise RuntimeError('the database is down')\n", "RuntimeError"),
    "exits": ("import sys\nsys.exit(3)\n", None),
    "aborts": ("import os\nos.abort()\n", None),
}


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_broken_locations_beside_healthy_ones(
    tmp_path: Path, fast_options: SupervisorOptions, no_processes_left: Callable[[], None]
) -> None:
    files = [user_code(tmp_path / "healthy", "healthy.py", HELLO)]
    for name, (source, _) in BROKEN.items():
        files.append(user_code(tmp_path / name, f"{name}.py", source))
    # The endless loop sits in a module the location imports, so the error can name it.
    user_code(tmp_path / "hangs", "stuck_dependency.py", "while True:\n    pass\n")
    files.append(user_code(tmp_path / "hangs", "hangs.py", "import stuck_dependency\n"))
    options = type(fast_options)(
        startup_timeout=4.0,
        heartbeat_timeout=fast_options.heartbeat_timeout,
        stop_grace=fast_options.stop_grace,
        restart=fast_options.restart,
    )
    async with Workspace.from_targets(python_files=files, options=options) as ws:
        healthy = ws.location("healthy")
        assert healthy.status == "loaded", healthy.error
        for name in [*BROKEN, "hangs"]:
            location = ws.location(name)
            assert location.status == "error", name
            assert location.error is not None
            assert location.snapshot is None
            assert location.pid is None
            # The error names the location's module: in its message, or in the traceback's frames.
            assert name in location.error.message or name in location.error.traceback, (
                location.error
            )

        syntax = ws.location("syntax").error
        assert syntax is not None and syntax.type == "SyntaxError"
        assert "syntax.py" in syntax.describe()
        raises = ws.location("raises").error
        assert raises is not None and raises.type == "RuntimeError"
        assert "the database is down" in raises.message
        assert "raises.py" in raises.traceback
        exits = ws.location("exits").error
        assert exits is not None and "3" in exits.describe(), exits
        aborts = ws.location("aborts").error
        assert aborts is not None and "SIGABRT" in aborts.message, aborts
        hangs = ws.location("hangs").error
        assert hangs is not None
        assert "loading did not finish within 4 s" in hangs.message
        assert "`stuck_dependency`" in hangs.message, hangs.message

        # The healthy location keeps working after its neighbours failed.
        assert healthy.pid is not None and is_running(healthy.pid)
        async with healthy.lease() as server:
            reply = await server.client.ping("still here")
            assert reply.echo == "still here"
        with pytest.raises(CodeLocationError, match="'raises' is error"):
            async with ws.location("raises").lease():
                pass
    no_processes_left()


@pytest.mark.anyio
async def test_modules_and_packages_load_from_the_working_directory(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    user_code(tmp_path, "team_module.py", HELLO)
    user_code(tmp_path / "team_package", "__init__.py", HELLO)
    async with Workspace.from_targets(
        modules=["team_module"],
        packages=["team_package"],
        working_directory=tmp_path,
        options=fast_options,
    ) as ws:
        assert {name: loc.status for name, loc in ws.locations.items()} == {
            "team_module": "loaded",
            "team_package": "loaded",
        }


@pytest.mark.anyio
async def test_user_output_goes_to_logging_tagged_with_the_location(
    tmp_path: Path, fast_options: SupervisorOptions, caplog: pytest.LogCaptureFixture
) -> None:
    source = (
        HELLO
        + "\nimport sys\nprint('hello from stdout')\nprint('hello from stderr', file=sys.stderr)\n"
    )
    file = user_code(tmp_path, "noisy.py", source)
    caplog.set_level(logging.INFO, logger="runtime.location")
    async with Workspace.from_targets(python_files=[file], options=fast_options) as ws:
        assert ws.location("noisy").status == "loaded"
        await eventually(
            lambda: len([r for r in caplog.records if r.getMessage().startswith("hello from")]) >= 2
        )
    records = {r.getMessage(): r for r in caplog.records if r.name == "runtime.location.noisy"}
    assert records["hello from stdout"].levelno == logging.INFO
    assert records["hello from stdout"].location_name == "noisy"  # type: ignore[attr-defined]
    assert records["hello from stderr"].levelno == logging.WARNING
    assert records["hello from stderr"].stream == "stderr"  # type: ignore[attr-defined]
    assert not any("RUNTIME_CODE_SERVER_READY" in message for message in records)


@pytest.mark.anyio
async def test_watch_reports_each_change_in_order(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    good = user_code(tmp_path, "good.py", HELLO)
    bad = user_code(tmp_path, "bad.py", "raise ValueError('nope')\n")
    ws = Workspace.from_targets(python_files=[good, bad], options=fast_options)
    watcher = ws.watch()
    changes: list[StatusChange] = []
    async with ws:
        await ws.reload("good")
    async for change in watcher:  # ends when the workspace closed
        changes.append(change)
    good_changes = [(c.old_status, c.new_status) for c in changes if c.location_name == "good"]
    assert good_changes == [("loading", "loaded"), ("loaded", "reloading"), ("reloading", "loaded")]
    bad_changes = [c for c in changes if c.location_name == "bad"]
    assert [(c.old_status, c.new_status) for c in bad_changes] == [("loading", "error")]
    assert bad_changes[0].error is not None and "nope" in bad_changes[0].error.message
    assert all(a.time <= b.time for a, b in zip(changes, changes[1:], strict=False))


@pytest.mark.anyio
async def test_two_workspaces_in_one_process(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    first = user_code(tmp_path / "a", "first.py", HELLO)
    second = user_code(tmp_path / "b", "second.py", HELLO)
    async with (
        Workspace.from_targets(python_files=[first], options=fast_options) as one,
        Workspace.from_targets(python_files=[second], options=fast_options) as two,
    ):
        assert one.location("first").status == "loaded"
        assert two.location("second").status == "loaded"
        assert list(one.locations) == ["first"] and list(two.locations) == ["second"]
        pid = two.location("second").pid
    assert pid is not None and not is_running(pid)


def test_misuse_raises_clear_errors(tmp_path: Path) -> None:
    spec = code_location_spec(
        "python_file", str(tmp_path / "x.py"), working_directory=str(tmp_path)
    )
    with pytest.raises(WorkspaceConfigError, match="Two locations are named 'x'"):
        Workspace.from_specs([spec, spec])
    with pytest.raises(WorkspaceConfigError, match="not 'host:port'"):
        Workspace.from_targets(grpc_servers=["nonsense"])
    ws = Workspace.from_specs([spec])
    with pytest.raises(CodeLocationError, match="No location named 'y'.*it has: x"):
        ws.location("y")


@pytest.mark.anyio
async def test_a_workspace_is_entered_once(tmp_path: Path, fast_options: SupervisorOptions) -> None:
    file = user_code(tmp_path, "once.py", HELLO)
    ws = Workspace.from_targets(python_files=[file], options=fast_options)
    async with ws:
        pass
    await ws.aclose()  # closing twice is harmless
    with pytest.raises(Exception, match="entered only once"):
        async with ws:
            pass


@pytest.mark.anyio
async def test_from_yaml_loads_every_entry_kind(
    tmp_path: Path, fast_options: SupervisorOptions
) -> None:
    user_code(tmp_path / "code", "by_file.py", HELLO)
    user_code(tmp_path / "code", "by_module.py", HELLO)
    workspace_file = tmp_path / "workspace.yaml"
    workspace_file.write_text(
        "load_from:\n"
        "  - python_file: code/by_file.py\n"
        "  - python_module:\n"
        "      module_name: by_module\n"
        "      working_directory: code\n"
        "      location_name: team_two\n"
    )
    async with Workspace.from_yaml(workspace_file, options=fast_options) as ws:
        assert {name: loc.status for name, loc in ws.locations.items()} == {
            "by_file": "loaded",
            "team_two": "loaded",
        }
        assert "workspace.yaml" in ws.location("team_two").spec.origin
    with pytest.raises(WorkspaceConfigError, match="does not exist"):
        Workspace.from_yaml(tmp_path / "missing.yaml")
