"""Instance: where its home is, what it opens, what it removes, and the runs it creates."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime.errors import InstanceConfigError, RunNotFoundError, RuntimeFrameworkError
from runtime.instance.config import InstanceConfig
from runtime.instance.instance import Instance
from runtime.instance.records import RunFilter, RunStatus
from runtime.instance.storage.sqlite import DATABASE_FILE_NAME
from tests.instance.storage_helpers import make_event

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_ephemeral_home_is_removed_on_close() -> None:
    instance = Instance.ephemeral()
    async with instance:
        home = instance.home
        await instance.create_run("etl", run_id="r1")
        instance.event_writer.append(make_event("r1", 1))
        await instance.event_writer.flush()
        assert (instance.storage_dir / DATABASE_FILE_NAME).is_file()
        assert instance.artifacts_dir == home / "storage"
        assert instance.run_artifacts_dir("r1") == home / "storage" / "r1"
    assert not home.exists()
    await instance.aclose()  # twice is harmless


async def test_ephemeral_takes_a_config() -> None:
    config = InstanceConfig()
    async with Instance.ephemeral(config) as instance:
        assert instance.config is config


async def test_home_from_the_environment_is_created_private_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "parent" / "custom-home"
    monkeypatch.setenv("RUNTIME_HOME", str(home))
    instance = Instance.from_home()
    assert instance.home == home
    assert instance.config.storage.kind == "sqlite"
    assert not (tmp_path / "parent").exists()  # reading an instance creates nothing
    async with instance:
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        database = home / "history" / DATABASE_FILE_NAME
        assert database.is_file() and stat.S_IMODE(database.stat().st_mode) == 0o600
    assert home.is_dir()  # a real home stays


async def test_a_home_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")
    with pytest.raises(InstanceConfigError) as caught:
        Instance.from_home(home)
    assert str(caught.value) == (
        f"RUNTIME_HOME {home} is a file, not a directory; remove it or set RUNTIME_HOME "
        "to a directory."
    )
    with pytest.raises(InstanceConfigError, match=rf"RUNTIME_HOME {home / 'below'} cannot be"):
        Instance.from_home(home / "below")


async def test_a_world_writable_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    with pytest.raises(InstanceConfigError, match=r"is writable by every user \(mode 777\)"):
        Instance.from_home(home)
    home.chmod(0o755)  # readable by others is the user's choice
    async with Instance.from_home(home) as instance:
        assert await instance.storage.count_runs() == 0


async def test_a_home_made_world_writable_before_open_is_refused_on_open(tmp_path: Path) -> None:
    instance = Instance.from_home(tmp_path / "later")
    (tmp_path / "later").mkdir()
    (tmp_path / "later").chmod(0o777)
    with pytest.raises(InstanceConfigError, match="writable by every user"):
        await instance.open()
    assert not instance.is_open


async def test_the_cli_reports_a_file_home_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "run", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )
    assert result.returncode == 1
    assert (
        result.stderr
        == f"error: RUNTIME_HOME {home} is a file, not a directory; remove it or set RUNTIME_HOME to a directory.\n"
    )


async def test_default_home_is_dot_runtime_under_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNTIME_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    async with Instance.from_home() as instance:
        assert instance.home == tmp_path / ".runtime"


async def test_instance_yaml_chooses_the_storage_dir(tmp_path: Path) -> None:
    # base_dir is relative to RUNTIME_HOME.
    (tmp_path / "instance.yaml").write_text(
        textwrap.dedent(
            """
            storage:
              sqlite: {base_dir: elsewhere/db}
            executor:
              pools: {db: 2}
            """
        )
    )
    async with Instance.from_home(tmp_path) as instance:
        assert instance.config.executor.pools == {"db": 2}
        await instance.create_run("etl")
    assert (tmp_path / "elsewhere" / "db" / DATABASE_FILE_NAME).is_file()


async def test_a_bad_instance_yaml_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "instance.yaml").write_text("storage:\n  postgres: {url: x}\n")
    with pytest.raises(InstanceConfigError, match=r"instance.yaml, line 2, .*unknown key `url`"):
        Instance.from_home(tmp_path)
    (tmp_path / "instance.yaml").write_text("storage:\n  sqlite: {base_dir: 3}\n")
    with pytest.raises(InstanceConfigError, match=r"line 2, .*\$\.storage\.sqlite\.base_dir"):
        Instance.from_home(tmp_path)


async def test_storage_is_only_there_while_open(tmp_path: Path) -> None:
    instance = Instance.from_home(tmp_path)
    with pytest.raises(RuntimeFrameworkError, match="not open yet"):
        _ = instance.storage
    async with instance:
        assert await instance.storage.get_runs() == []
    with pytest.raises(RuntimeFrameworkError, match="is closed"):
        _ = instance.event_writer
    with pytest.raises(RuntimeFrameworkError, match="closed; build a new one"):
        await instance.open()


async def test_create_run_and_reexecution_lineage(tmp_path: Path) -> None:
    async with Instance.from_home(tmp_path) as instance:
        first = await instance.create_run(
            "etl", location_name="team_one", run_config={"a": 1}, tags={"team": "x"}
        )
        assert first.status is RunStatus.NOT_STARTED and len(first.run_id) == 36
        second = await instance.create_run("etl", parent_run_id=first.run_id)
        third = await instance.create_run("etl", parent_run_id=second.run_id)
        assert (second.root_run_id, third.root_run_id) == (first.run_id, first.run_id)
        assert third.parent_run_id == second.run_id
        with pytest.raises(RunNotFoundError, match="Cannot re-execute run ghost"):
            await instance.create_run("etl", parent_run_id="ghost")
        tagged = await instance.storage.get_runs(RunFilter(tags={"team": "x"}))
        assert tagged == [first]


async def test_an_exception_inside_the_block_reaches_the_caller_unwrapped(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom) as raised:
        async with Instance.ephemeral() as instance:
            await instance.create_run("etl", run_id="r1")
            raise Boom("raised inside the block")
    assert type(raised.value) is Boom

    # The same with a persistent home: what was appended before the error is stored.
    with pytest.raises(RuntimeFrameworkError, match="inside the block") as framework:
        async with Instance.from_home(tmp_path) as instance:
            await instance.create_run("etl", run_id="r2")
            instance.event_writer.append_many([make_event("r2", 1), make_event("r2", 2)])
            raise RuntimeFrameworkError("raised inside the block")
    assert type(framework.value) is RuntimeFrameworkError
    async with Instance.from_home(tmp_path) as instance:
        assert await instance.storage.last_sequence("r2") == 2


def test_reading_a_workspace_s_instance_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.host.workspace import Workspace

    home = tmp_path / "home"
    monkeypatch.setenv("RUNTIME_HOME", str(home))
    workspace = Workspace.from_specs([])
    assert workspace.instance.home == home
    assert not workspace.instance.is_open
    assert not home.exists()
