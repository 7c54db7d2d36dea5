"""Hostile or mistaken config files stay cheap: alias bombs, huge files, a mistake early in a big file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.config_file import MAX_CONFIG_BYTES, read_yaml_document
from runtime.errors import InstanceConfigError, WorkspaceConfigError
from runtime.instance.instance import Instance
from runtime.workspace.config import load_workspace_yaml

if TYPE_CHECKING:
    from pathlib import Path

# Nine times nine ... nine times: 9**9 (387 million) strings from nine short lines.
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_in_workspace_yaml_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text(BILLION_LAUGHS + "load_from: *i\n")
    with pytest.raises(WorkspaceConfigError) as caught:
        load_workspace_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line ")
    assert "expands to more than 1,000,000 values" in message
    assert "YAML aliases" in message


def test_an_alias_bomb_in_instance_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "instance.yaml").write_text(BILLION_LAUGHS + "storage: *i\n")
    with pytest.raises(InstanceConfigError, match="expands to more than 1,000,000 values"):
        Instance.from_home(tmp_path)


def test_aliases_that_expand_a_little_still_work(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text("")
    path = tmp_path / "workspace.yaml"
    path.write_text(
        "common: &common {working_directory: ., attribute: defs}\n"
        "load_from:\n"
        "  - python_file: {relative_path: defs.py, location_name: one, <<: *common}\n"
        "  - python_file: {relative_path: defs.py, location_name: two, <<: *common}\n"
    )
    with pytest.raises(WorkspaceConfigError, match="unknown key `common`"):
        load_workspace_yaml(path)
    document = read_yaml_document(path, error=WorkspaceConfigError)
    entries = document.data["load_from"]
    assert [e["python_file"]["attribute"] for e in entries] == ["defs", "defs"]


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text("load_from:\n" + "  - python_file: a.py\n" * (MAX_CONFIG_BYTES // 20))
    with pytest.raises(WorkspaceConfigError) as caught:
        load_workspace_yaml(path)
    assert str(caught.value) == (
        f"Config file {path} is {path.stat().st_size / 1024 / 1024:.1f} MiB; "
        "a config file may be at most 1 MiB."
    )


def _big_workspace(tmp_path: Path, head: str, tail: str = "") -> Path:
    entries = "".join(
        f"  - python_module: {{module_name: team_{i}.defs, location_name: team_{i}}}\n"
        for i in range(700)
    )
    path = tmp_path / "workspace.yaml"
    path.write_text(head + entries + tail)
    return path


def test_an_early_mistake_in_a_big_file_is_reported_from_its_opening(tmp_path: Path) -> None:
    # The file also ends in broken YAML: parsing all of it would report that
    # first, so the message proves only the opening was read.
    path = _big_workspace(
        tmp_path, "load_from:\n  - python_file: a.py\n    bogus: 1\n", tail="  - [unclosed\n"
    )
    with pytest.raises(WorkspaceConfigError) as caught:
        load_workspace_yaml(path)
    assert str(caught.value) == (
        f"{path}, line 3, column 5: unknown key `bogus` in `$.load_from[0]`; the known keys "
        "are `python_file`, `python_module`, `python_package`, `grpc_server`."
    )
    broken = _big_workspace(tmp_path, "load_from:\n  - python_file: [a.py\n")
    with pytest.raises(
        WorkspaceConfigError, match=r"line 3, column 18: the file is not valid YAML"
    ):
        load_workspace_yaml(broken)


def test_a_big_file_cut_mid_entry_is_not_misread(tmp_path: Path) -> None:
    # Whatever entry the opening part ends in, a valid file loads as a whole.
    (tmp_path / "a.py").write_text("")
    specs = load_workspace_yaml(_big_workspace(tmp_path, "load_from:\n  - python_file: a.py\n"))
    assert len(specs) == 701
    assert specs[-1].name == "team_699"
    # And a mistake at its very end is found there.
    path = _big_workspace(tmp_path, "load_from:\n", tail="  - python_module: {module: x}\n")
    with pytest.raises(WorkspaceConfigError, match=r"line 702, .*unknown key `module`"):
        load_workspace_yaml(path)
