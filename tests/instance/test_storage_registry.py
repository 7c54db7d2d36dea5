"""The storage registry: kinds by name, their options validated from instance.yaml, their
factories used by the instance; unknown and planned kinds are clear errors."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import msgspec
import pytest

from runtime.errors import InstanceConfigError
from runtime.instance.instance import Instance
from runtime.instance.storage.registry import StorageKind, StorageRegistry
from runtime.instance.storage.sqlite import SqliteRunStorage
from tests.instance.storage_helpers import make_run

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.instance.storage.base import RunStorage


class ScratchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The options of a backend a test registers: where its files go."""

    folder: str
    label: str = "scratch"


def open_scratch(home: Path, config: ScratchConfig) -> RunStorage:
    return SqliteRunStorage(home / config.folder)


SCRATCH = StorageKind(name="scratch", title="Scratch", config_type=ScratchConfig, open=open_scratch)


def test_builtin_kinds_and_planned_ones() -> None:
    registry = StorageRegistry()
    assert registry.names == ["postgres", "sqlite"]
    assert registry.all_names == ["postgres", "sqlite"]
    kind = registry.get("sqlite")
    assert kind is not None and kind.title == "SQLite"
    postgres = registry.get("postgres")
    assert postgres is not None and postgres.title == "PostgreSQL"
    assert registry.get("nope") is None
    assert registry.explain_unknown("sqlit") == (
        "there is no storage `sqlit`; did you mean `sqlite`? the known storages are "
        "`postgres`, `sqlite`."
    )
    planned = StorageRegistry(planned={"mongo": "MongoDB storage"})
    assert planned.all_names == ["postgres", "sqlite", "mongo"]
    assert planned.planned_title("mongo") == "MongoDB storage"
    assert planned.get("mongo") is None


def test_a_module_must_define_the_kind_it_is_listed_for() -> None:
    registry = StorageRegistry({"other": "runtime.instance.storage.sqlite_kind"})
    with pytest.raises(TypeError, match="must be the StorageKind named 'other'"):
        registry.get("other")


@pytest.mark.anyio
async def test_a_registered_kind_is_chosen_validated_and_opened(tmp_path: Path) -> None:
    registry = StorageRegistry()
    registry.register(SCRATCH)
    assert registry.names == ["postgres", "scratch", "sqlite"]
    (tmp_path / "instance.yaml").write_text("storage:\n  scratch:\n    folder: here\n")
    instance = Instance.from_home(tmp_path, registry=registry)
    assert instance.config.storage.kind == "scratch"
    assert instance.config.storage.options == ScratchConfig(folder="here")
    async with instance:
        await instance.create_run("etl", run_id="r1")
        assert instance.storage.describe().endswith(str(tmp_path / "here" / "runtime.db"))
    assert (tmp_path / "here" / "runtime.db").is_file()

    (tmp_path / "instance.yaml").write_text(
        "storage:\n  scratch:\n    folder: here\n    lable: x\n"
    )
    with pytest.raises(InstanceConfigError, match=r"line 4, .*did you mean `label`\?"):
        Instance.from_home(tmp_path, registry=registry)
    # Without the registration, the same file names an unknown storage.
    with pytest.raises(InstanceConfigError, match="there is no storage `scratch`"):
        Instance.from_home(tmp_path)


@pytest.mark.anyio
async def test_an_instance_config_naming_an_unregistered_kind_fails_on_open(
    tmp_path: Path,
) -> None:
    registry = StorageRegistry()
    registry.register(SCRATCH)
    (tmp_path / "instance.yaml").write_text("storage:\n  scratch: {folder: x}\n")
    config = Instance.from_home(tmp_path, registry=registry).config
    with pytest.raises(InstanceConfigError, match="not available: there is no storage `scratch`"):
        async with Instance(tmp_path, config):
            pass


def test_the_sqlite_backend_is_imported_only_when_chosen(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from runtime.instance.config import load_instance_config\n"
        f"load_instance_config(Path({str(tmp_path)!r}))\n"
        "print('runtime.instance.storage.sqlite' in sys.modules, 'sqlite3' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.anyio
async def test_a_storage_built_by_a_kind_stays_closed_until_opened(tmp_path: Path) -> None:
    storage = SCRATCH.open(tmp_path, ScratchConfig(folder="lazy"))
    assert not (tmp_path / "lazy").exists()
    async with storage:
        await storage.add_run(make_run("r1"))
    assert (tmp_path / "lazy" / "runtime.db").is_file()
