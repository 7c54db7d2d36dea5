"""workspace.yaml and pyproject.toml [tool.runtime] parsed into LocationSpecs, and their errors."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

from runtime.errors import ConfigError, WorkspaceConfigError
from runtime.workspace.config import (
    default_location_name,
    load_workspace_file,
    load_workspace_yaml,
)
from runtime.workspace.pyproject import has_runtime_table, load_pyproject_workspace
from runtime.workspace.spec import LocationSpec

if TYPE_CHECKING:
    from pathlib import Path


def write_workspace(folder: Path, text: str, name: str = "workspace.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def workspace_error(folder: Path, text: str) -> str:
    path = write_workspace(folder, text)
    with pytest.raises(WorkspaceConfigError) as caught:
        load_workspace_yaml(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


# ---------------------------------------------------------------- every form


def test_python_file_scalar_form(tmp_path: Path) -> None:
    touch(tmp_path / "defs.py")
    path = write_workspace(tmp_path, "load_from:\n  - python_file: defs.py\n")
    assert load_workspace_yaml(path) == [
        LocationSpec(
            name="defs",
            kind="python_file",
            python_file=str(tmp_path / "defs.py"),
            working_directory=str(tmp_path),
            origin=f"{path} line 2",
        )
    ]


def test_python_file_mapping_form_with_every_key(tmp_path: Path) -> None:
    touch(tmp_path / "code" / "team_defs.py")
    (tmp_path / "work").mkdir()
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - python_file:\n"
        "      relative_path: code/team_defs.py\n"
        "      attribute: defs\n"
        "      location_name: team_one\n"
        "      working_directory: work\n"
        "      executable_path: venvs/one/bin/python\n",
    )
    [spec] = load_workspace_yaml(path)
    assert spec == LocationSpec(
        name="team_one",
        kind="python_file",
        python_file=str(tmp_path / "code" / "team_defs.py"),
        attribute="defs",
        working_directory=str(tmp_path / "work"),
        executable_path=str(tmp_path / "venvs" / "one" / "bin" / "python"),
        origin=f"{path} line 2",
    )
    assert spec.is_managed


def test_python_module_both_forms(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - python_module: team_a.defs\n"
        "  - python_module:\n"
        "      module_name: team_b.defs\n"
        "      attribute: nightly\n",
    )
    first, second = load_workspace_yaml(path)
    assert (first.name, first.kind, first.module_name, first.attribute) == (
        "team_a.defs",
        "python_module",
        "team_a.defs",
        None,
    )
    assert (second.name, second.module_name, second.attribute) == (
        "team_b.defs:nightly",
        "team_b.defs",
        "nightly",
    )
    assert first.working_directory == second.working_directory == str(tmp_path)
    assert (first.origin, second.origin) == (f"{path} line 2", f"{path} line 3")


def test_python_package_both_forms(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - python_package: analytics\n"
        "  - python_package: {package_name: billing, location_name: money}\n",
    )
    first, second = load_workspace_yaml(path)
    assert (first.name, first.kind, first.package_name) == (
        "analytics",
        "python_package",
        "analytics",
    )
    assert (second.name, second.package_name) == ("money", "billing")
    assert first.code_server_target_args()[:2] == ["--package-name", "analytics"]


def test_grpc_server_port_and_socket(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - grpc_server: {host: remote.example, port: 4266}\n"
        "  - grpc_server:\n"
        "      socket: run/server.sock\n"
        "      location_name: local\n"
        "  - grpc_server: {port: 5000, ssl: true}\n",
    )
    remote, local, default_host = load_workspace_yaml(path)
    assert remote == LocationSpec(
        name="remote.example:4266",
        kind="grpc_server",
        host="remote.example",
        port=4266,
        origin=f"{path} line 2",
    )
    assert not remote.is_managed
    assert (local.name, local.socket, local.ssl, local.port) == (
        "local",
        str(tmp_path / "run" / "server.sock"),
        False,
        None,
    )
    assert (default_host.name, default_host.host, default_host.ssl) == (
        "localhost:5000",
        "localhost",
        True,
    )


def test_grpc_server_default_name_with_socket(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path, "load_from:\n  - grpc_server: {host: h, socket: /tmp/x.sock}\n"
    )
    [spec] = load_workspace_yaml(path)
    assert spec.name == "h:/tmp/x.sock" == spec.address


def test_relative_paths_are_taken_from_the_workspace_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "deploy"
    touch(tmp_path / "project" / "src" / "defs.py")
    path = write_workspace(
        folder,
        "load_from:\n"
        "  - python_file:\n"
        "      relative_path: ../src/defs.py\n"
        "      working_directory: ..\n",
    )
    # The current directory must not matter, and a relative workspace path works.
    monkeypatch.chdir(tmp_path)
    [spec] = load_workspace_yaml(path.relative_to(tmp_path))
    assert spec.python_file == str(tmp_path / "project" / "src" / "defs.py")
    assert spec.working_directory == str(tmp_path / "project")
    assert spec.origin == "project/deploy/workspace.yaml line 2"


def test_tilde_expands_in_executable_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - python_module: {module_name: m, executable_path: ~/venvs/etl/bin/python}\n",
    )
    [spec] = load_workspace_yaml(path)
    assert spec.executable_path == str(tmp_path / "home" / "venvs" / "etl" / "bin" / "python")


def test_bare_executable_name_is_looked_up_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = os.path.dirname(sys.executable)
    name = os.path.basename(sys.executable)
    monkeypatch.setenv("PATH", folder)
    path = write_workspace(
        tmp_path, f"load_from:\n  - python_module: {{module_name: m, executable_path: {name}}}\n"
    )
    [spec] = load_workspace_yaml(path)
    assert spec.executable_path == os.path.join(folder, name)


def test_env_values_in_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WS_HOST", "db.internal")
    monkeypatch.setenv("TEST_WS_PORT", "7001")
    monkeypatch.setenv("TEST_WS_MODULE", "from_env.defs")
    path = write_workspace(
        tmp_path,
        "load_from:\n"
        "  - grpc_server: {host: {env: TEST_WS_HOST}, port: {env: TEST_WS_PORT}}\n"
        "  - python_module: {env: TEST_WS_MODULE}\n",
    )
    server, module = load_workspace_yaml(path)
    assert (server.host, server.port, server.name) == ("db.internal", 7001, "db.internal:7001")
    assert module.module_name == module.name == "from_env.defs"


def test_default_location_names() -> None:
    assert default_location_name("python_file", "/a/b/repo.py") == "repo"
    assert default_location_name("python_file", "/a/b/repo.py", "defs") == "repo:defs"
    assert default_location_name("python_file", "/a/b/script") == "script"
    assert default_location_name("python_module", "a.b.c") == "a.b.c"
    assert default_location_name("python_package", "pkg", "other") == "pkg:other"


def test_load_workspace_file_dispatches_on_the_file_name(tmp_path: Path) -> None:
    yml = write_workspace(tmp_path, "load_from:\n  - python_module: m\n", name="workspace.yml")
    assert [spec.name for spec in load_workspace_file(yml)] == ["m"]
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.runtime]\nmodule_name = "pm"\n')
    assert [spec.name for spec in load_workspace_file(toml)] == ["pm"]


# ---------------------------------------------------------------- errors


def test_yaml_that_does_not_parse(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module: a\n   - python_module: b\n")
    assert "line 3, column 4: the file is not valid YAML" in message


def test_tab_indentation_is_a_parse_error(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n\t- python_module: a\n")
    assert "line 2, column 1: the file is not valid YAML" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_form:\n  - python_module: a\n")
    assert message.endswith(
        "line 1, column 1: unknown key `load_form` in `$`; did you mean `load_from`?"
    )


def test_unknown_entry_kind_suggests_closest(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module: a\n  - pyton_file: b.py\n")
    assert message.endswith(
        "line 3, column 5: unknown key `pyton_file` in `$.load_from[1]`; "
        "did you mean `python_file`?"
    )


def test_unknown_key_in_mapping_form(tmp_path: Path) -> None:
    message = workspace_error(
        tmp_path,
        "load_from:\n  - python_file:\n      relative_path: a.py\n      atribute: defs\n",
    )
    assert message.endswith(
        "line 4, column 7: unknown key `atribute` in `$.load_from[0].python_file`; "
        "did you mean `attribute`?"
    )


def test_unknown_key_in_grpc_server(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - grpc_server: {host: h, prot: 1}\n")
    assert (
        "line 2, column 28: unknown key `prot` in `$.load_from[0].grpc_server`; "
        "did you mean `port`?"
    ) in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module:\n      attribute: defs\n")
    assert message.endswith(
        "line 3, column 7: `$.load_from[0].python_module` is missing the required key "
        "`module_name`."
    )


def test_missing_load_from(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "{}\n")
    assert message.endswith("`$` is missing the required key `load_from`.")


def test_empty_file(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "")
    assert message.endswith("is empty; it should hold a mapping of settings.")


def test_empty_load_from(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "# locations\nload_from: []\n")
    assert "line 2, column 12: `load_from` is empty" in message


def test_entry_with_two_kinds_points_at_the_second(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module: a\n    python_package: b\n")
    assert message.endswith(
        "line 3, column 5: `$.load_from[0]` declares both `python_module` and "
        "`python_package`; write each location as its own `- ` entry under `load_from`."
    )


def test_entry_with_no_kind(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module: a\n  - {}\n")
    assert "line 3, column 5: `$.load_from[1]` declares no location" in message


def test_entry_kind_without_value(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_file:\n")
    assert "line 2, column 5: `$.load_from[0].python_file` is empty" in message
    assert "relative_path" in message


def test_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - defs.py\n")
    assert message.endswith(
        "line 2, column 5: invalid value at `$.load_from[0]`: expected a mapping, got a string."
    )


def test_wrong_value_type(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - grpc_server: {host: h, port: many}\n")
    assert (
        "line 2, column 34: invalid value at `$.load_from[0].grpc_server.port`: "
        "expected an integer or nothing (null), got a string."
    ) in message


def test_port_out_of_range(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - grpc_server: {port: 70000}\n")
    assert "invalid value at `$.load_from[0].grpc_server.port`: expected an integer <= 65535" in (
        message
    )


def test_empty_string_value(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - python_module: ''\n")
    assert "line 2, column 20: invalid value at `$.load_from[0].python_module`" in message


def test_both_port_and_socket(tmp_path: Path) -> None:
    message = workspace_error(
        tmp_path,
        "load_from:\n  - grpc_server:\n      host: h\n      port: 1\n      socket: /s.sock\n",
    )
    assert message.endswith(
        "line 5, column 7: `$.load_from[0].grpc_server` sets both `port` and `socket`; "
        "a server listens on one of them."
    )


def test_ssl_on_a_socket_is_rejected(tmp_path: Path) -> None:
    message = workspace_error(
        tmp_path,
        "load_from:\n  - grpc_server:\n      socket: /s.sock\n      ssl: true\n",
    )
    assert message.endswith(
        "line 4, column 7: `$.load_from[0].grpc_server` sets both `socket` and `ssl: true`; "
        "TLS is served on a TCP `port` only (a Unix socket is private already), "
        "so drop `ssl` or use `port`."
    )


def test_ssl_false_on_a_socket_is_accepted(tmp_path: Path) -> None:
    path = write_workspace(tmp_path, "load_from:\n  - grpc_server: {socket: /s.sock, ssl: false}\n")
    [spec] = load_workspace_yaml(path)
    assert (spec.socket, spec.ssl) == ("/s.sock", False)


def test_neither_port_nor_socket(tmp_path: Path) -> None:
    message = workspace_error(tmp_path, "load_from:\n  - grpc_server:\n      host: h\n")
    assert (
        "line 3, column 7: `$.load_from[0].grpc_server` sets neither `port` nor `socket`" in message
    )


def test_a_missing_python_file_is_parsed_for_its_location_to_fail(tmp_path: Path) -> None:
    # The workspace loads; only this location fails, naming the file and its line.
    path = write_workspace(
        tmp_path,
        "load_from:\n  - python_file: lost.py\n  - python_file: {relative_path: sub/x.py}\n",
    )
    specs = load_workspace_yaml(path)
    assert [s.python_file for s in specs] == [str(tmp_path / "lost.py"), str(tmp_path / "sub/x.py")]
    assert specs[0].origin == f"{path} line 2"


def test_bare_executable_not_on_path(tmp_path: Path) -> None:
    message = workspace_error(
        tmp_path,
        "load_from:\n  - python_module: {module_name: m, executable_path: no-such-python-3.99}\n",
    )
    assert "`$.load_from[0].python_module.executable_path` is `no-such-python-3.99`" in message
    assert "not on PATH" in message


def test_duplicate_default_names_name_both_lines(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "defs.py")
    touch(tmp_path / "b" / "defs.py")
    message = workspace_error(
        tmp_path,
        "load_from:\n"
        "  - python_file: a/defs.py\n"
        "  - python_module: other\n"
        "  - python_file: b/defs.py\n",
    )
    assert message.endswith(
        "line 4, column 18: two locations are named `defs` (line 2 and line 4); "
        "give one of them another `location_name`."
    )


def test_duplicate_explicit_names_point_at_location_name(tmp_path: Path) -> None:
    message = workspace_error(
        tmp_path,
        "load_from:\n"
        "  - python_module: {module_name: a, location_name: team}\n"
        "  - grpc_server:\n"
        "      port: 4000\n"
        "      location_name: team\n",
    )
    assert "line 5, column 22: two locations are named `team` (line 2 and line 3)" in message


def test_unset_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_WS_UNSET", raising=False)
    message = workspace_error(
        tmp_path, "load_from:\n  - grpc_server:\n      port: {env: TEST_WS_UNSET}\n"
    )
    assert message.endswith(
        "line 3, column 13: `$.load_from[0].grpc_server.port` reads the environment "
        "variable `TEST_WS_UNSET`, which is not set."
    )


def test_missing_workspace_file(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceConfigError, match=r"nope\.yaml does not exist"):
        load_workspace_yaml(tmp_path / "nope.yaml")


def test_workspace_error_is_a_config_error(tmp_path: Path) -> None:
    path = write_workspace(tmp_path, "load_from: 3\n")
    with pytest.raises(ConfigError, match=r"expected a list, got an integer"):
        load_workspace_yaml(path)


# ---------------------------------------------------------------- pyproject.toml


def write_pyproject(folder: Path, text: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text('[project]\nname = "team"\n\n' + text)
    return path


def pyproject_error(folder: Path, text: str) -> str:
    path = write_pyproject(folder, text)
    with pytest.raises(WorkspaceConfigError) as caught:
        load_pyproject_workspace(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def test_pyproject_module_name(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[tool.runtime]\nmodule_name = "team.defs"\n')
    assert has_runtime_table(path)
    assert load_pyproject_workspace(path) == [
        LocationSpec(
            name="team.defs",
            kind="python_module",
            module_name="team.defs",
            working_directory=str(tmp_path),
            origin=f"{path} line 5",
        )
    ]


def test_pyproject_modules_with_options(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path,
        "[tool.runtime]\n"
        'modules = ["a.defs", "b.defs"]\n'
        'attribute = "defs"\n'
        'working_directory = "src"\n',
    )
    specs = load_pyproject_workspace(path)
    assert [(s.name, s.module_name, s.attribute) for s in specs] == [
        ("a.defs:defs", "a.defs", "defs"),
        ("b.defs:defs", "b.defs", "defs"),
    ]
    assert {s.working_directory for s in specs} == {str(tmp_path / "src")}


def test_pyproject_location_name(tmp_path: Path) -> None:
    path = write_pyproject(
        tmp_path, '[tool.runtime]\nmodule_name = "x.defs"\nlocation_name = "main"\n'
    )
    [spec] = load_pyproject_workspace(path)
    assert spec.name == "main"


def test_pyproject_without_table(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.other]\nx = 1\n")
    assert not has_runtime_table(path)
    message = pyproject_error(tmp_path, "[tool.other]\nx = 1\n")
    assert "has no [tool.runtime] table" in message


def test_pyproject_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    message = pyproject_error(tmp_path, '[tool.runtime]\nmodule_name = "a"\nattribut = "d"\n')
    assert message.endswith(
        ", line 6: unknown key `attribut` in `tool.runtime`; did you mean `attribute`?"
    )


def test_pyproject_wrong_type(tmp_path: Path) -> None:
    message = pyproject_error(tmp_path, '[tool.runtime]\nmodules = ["a", 3]\n')
    assert message.endswith(
        ", line 5: invalid value at `tool.runtime.modules[1]`: expected a string, got an integer."
    )


def test_pyproject_both_or_neither_module_key(tmp_path: Path) -> None:
    both = pyproject_error(tmp_path, '[tool.runtime]\nmodule_name = "a"\nmodules = ["b"]\n')
    assert "line 6: [tool.runtime] sets both `module_name` and `modules`" in both
    neither = pyproject_error(tmp_path, '[tool.runtime]\nattribute = "d"\n')
    assert "line 4: [tool.runtime] names no module" in neither
    empty = pyproject_error(tmp_path, "[tool.runtime]\nmodules = []\n")
    assert "line 5: [tool.runtime] names no module" in empty


def test_pyproject_duplicate_names(tmp_path: Path) -> None:
    message = pyproject_error(tmp_path, '[tool.runtime]\nmodules = ["a", "b", "a"]\n')
    assert "lists the module `a` twice" in message
    message = pyproject_error(
        tmp_path, '[tool.runtime]\nmodules = ["a", "b"]\nlocation_name = "one"\n'
    )
    assert "line 6: [tool.runtime] sets one `location_name` for 2 modules" in message


def test_pyproject_invalid_toml(tmp_path: Path) -> None:
    message = pyproject_error(tmp_path, "[tool.runtime\n")
    assert "is not valid TOML" in message
    assert "line 4" in message
