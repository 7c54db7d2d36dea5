"""Command-line targets: the shared flags, parsed by argparse and resolved into LocationSpecs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pytest

from runtime.errors import WorkspaceConfigError
from runtime.workspace.spec import LocationSpec
from runtime.workspace.targets import (
    TargetOptions,
    add_target_arguments,
    find_default_workspace,
    resolve_targets,
)

if TYPE_CHECKING:
    from pathlib import Path


def parse(*argv: str) -> TargetOptions:
    parser = argparse.ArgumentParser(prog="runtime workspace list", exit_on_error=False)
    add_target_arguments(parser)
    return TargetOptions.from_namespace(parser.parse_args(list(argv)))


def resolve(cwd: Path, *argv: str) -> list[LocationSpec]:
    return resolve_targets(parse(*argv), cwd)


def resolve_error(cwd: Path, *argv: str) -> str:
    with pytest.raises(WorkspaceConfigError) as caught:
        resolve(cwd, *argv)
    return str(caught.value)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


# ---------------------------------------------------------------- argparse


def test_no_flags_gives_empty_options() -> None:
    options = parse()
    assert options == TargetOptions()
    assert options.is_empty


def test_every_flag_long_and_short() -> None:
    short = parse(
        "-w", "a.yaml", "-w", "b.yaml", "-f", "x.py", "-f", "y.py", "-m", "m1", "-m", "m2",
        "-a", "defs", "-d", "work",
    )  # fmt: skip
    assert short == TargetOptions(
        workspace_files=["a.yaml", "b.yaml"],
        python_files=["x.py", "y.py"],
        modules=["m1", "m2"],
        attribute="defs",
        working_directory="work",
    )
    long = parse(
        "--workspace", "a.yaml", "--python-file", "x.py", "--module-name", "m1",
        "--package-name", "pkg", "--attribute", "defs", "--working-directory", "work",
        "--grpc-host", "h", "--grpc-port", "4266", "--grpc-socket", "s.sock",
    )  # fmt: skip
    assert long == TargetOptions(
        workspace_files=["a.yaml"],
        python_files=["x.py"],
        modules=["m1"],
        package_name="pkg",
        attribute="defs",
        working_directory="work",
        grpc_host="h",
        grpc_port=4266,
        grpc_socket="s.sock",
    )
    assert not long.is_empty


def test_grpc_port_must_be_an_integer() -> None:
    with pytest.raises(argparse.ArgumentError, match="invalid int value"):
        parse("--grpc-port", "many")


def test_from_namespace_tolerates_missing_attributes() -> None:
    assert TargetOptions.from_namespace(argparse.Namespace()) == TargetOptions()


# ---------------------------------------------------------------- code targets


def test_python_files(tmp_path: Path) -> None:
    touch(tmp_path / "a.py")
    touch(tmp_path / "pkg" / "b.py")
    first, second = resolve(tmp_path, "-f", "a.py", "-f", "pkg/b.py")
    assert first == LocationSpec(
        name="a",
        kind="python_file",
        python_file=str(tmp_path / "a.py"),
        working_directory=str(tmp_path),
        origin="command line",
    )
    assert (second.name, second.python_file) == ("b", str(tmp_path / "pkg" / "b.py"))


def test_absolute_python_file_and_working_directory(tmp_path: Path) -> None:
    file = touch(tmp_path / "elsewhere" / "defs.py")
    (tmp_path / "cwd" / "work").mkdir(parents=True)
    [spec] = resolve(tmp_path / "cwd", "-f", str(file), "-d", "work")
    assert spec.python_file == str(file)
    assert spec.working_directory == str(tmp_path / "cwd" / "work")


def test_modules_with_attribute(tmp_path: Path) -> None:
    specs = resolve(tmp_path, "-m", "team_a.defs", "-m", "team_b.defs", "-a", "nightly")
    assert [(s.name, s.kind, s.module_name, s.attribute) for s in specs] == [
        ("team_a.defs:nightly", "python_module", "team_a.defs", "nightly"),
        ("team_b.defs:nightly", "python_module", "team_b.defs", "nightly"),
    ]
    assert {s.working_directory for s in specs} == {str(tmp_path)}


def test_package_name(tmp_path: Path) -> None:
    [spec] = resolve(tmp_path, "--package-name", "analytics")
    assert (spec.name, spec.kind, spec.package_name) == (
        "analytics",
        "python_package",
        "analytics",
    )


def test_files_modules_and_package_together(tmp_path: Path) -> None:
    touch(tmp_path / "a.py")
    specs = resolve(tmp_path, "-f", "a.py", "-m", "b.defs", "--package-name", "c")
    assert [(s.kind, s.name) for s in specs] == [
        ("python_file", "a"),
        ("python_module", "b.defs"),
        ("python_package", "c"),
    ]


def test_a_missing_python_file_is_a_location_not_an_error(tmp_path: Path) -> None:
    # It fails to load on its own, leaving the other targets alone.
    touch(tmp_path / "here.py")
    specs = resolve(tmp_path, "-f", "gone.py", "-f", "here.py")
    assert [(s.name, s.python_file) for s in specs] == [
        ("gone", str(tmp_path / "gone.py")),
        ("here", str(tmp_path / "here.py")),
    ]


def test_missing_working_directory(tmp_path: Path) -> None:
    message = resolve_error(tmp_path, "-m", "m", "-d", "nowhere")
    assert "-d/--working-directory nowhere is not a directory" in message


def test_two_targets_with_the_same_name(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "defs.py")
    touch(tmp_path / "b" / "defs.py")
    message = resolve_error(tmp_path, "-f", "a/defs.py", "-f", "b/defs.py")
    assert f"both be the location `defs` ({tmp_path / 'a' / 'defs.py'} and " in message
    message = resolve_error(tmp_path, "-m", "x", "-m", "x")
    assert "both be the location `x` (x and x)" in message


# ---------------------------------------------------------------- grpc targets


def test_grpc_port_and_host(tmp_path: Path) -> None:
    [spec] = resolve(tmp_path, "--grpc-host", "remote", "--grpc-port", "4266")
    assert spec == LocationSpec(
        name="remote:4266", kind="grpc_server", host="remote", port=4266, origin="command line"
    )


def test_grpc_socket_defaults_to_localhost(tmp_path: Path) -> None:
    [spec] = resolve(tmp_path, "--grpc-socket", "run/s.sock")
    assert (spec.host, spec.socket, spec.port) == ("localhost", str(tmp_path / "run/s.sock"), None)
    assert spec.name == f"localhost:{tmp_path / 'run/s.sock'}"


def test_grpc_conflicts_and_gaps(tmp_path: Path) -> None:
    both = resolve_error(tmp_path, "--grpc-port", "1", "--grpc-socket", "s")
    assert both.startswith("--grpc-port cannot be combined with --grpc-socket")
    host_only = resolve_error(tmp_path, "--grpc-host", "h")
    assert host_only.startswith("--grpc-host needs --grpc-port or --grpc-socket")
    out_of_range = resolve_error(tmp_path, "--grpc-port", "0")
    assert "--grpc-port 0 is not a port number" in out_of_range


# ---------------------------------------------------------------- workspace files


def test_workspace_files_later_one_wins(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module: {module_name: shared.defs, location_name: shared}\n"
        "  - python_module: only_one\n"
    )
    (tmp_path / "two" / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module: only_two\n"
        "  - grpc_server: {port: 4000, location_name: shared}\n"
    )
    specs = resolve(tmp_path, "-w", "one/workspace.yaml", "-w", "two/workspace.yaml")
    by_name = {s.name: s for s in specs}
    assert [s.name for s in specs] == ["shared", "only_one", "only_two"]
    assert by_name["shared"].kind == "grpc_server"
    assert by_name["shared"].origin == f"{tmp_path / 'two' / 'workspace.yaml'} line 3"
    assert by_name["only_one"].working_directory == str(tmp_path / "one")


def test_workspace_flag_accepts_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runtime]\nmodule_name = "p.defs"\n')
    [spec] = resolve(tmp_path, "-w", "pyproject.toml")
    assert spec.module_name == "p.defs"


def test_missing_workspace_file(tmp_path: Path) -> None:
    message = resolve_error(tmp_path, "-w", "missing.yaml")
    assert (
        message
        == f"Workspace file {tmp_path / 'missing.yaml'} (from -w missing.yaml) does not exist."
    )


def test_invalid_workspace_file_error_passes_through(tmp_path: Path) -> None:
    (tmp_path / "workspace.yaml").write_text("load_from:\n  - pyton_module: a\n")
    message = resolve_error(tmp_path, "-w", "workspace.yaml")
    assert "line 2, column 5: unknown key `pyton_module`" in message


# ---------------------------------------------------------------- no target: the current directory


def test_default_workspace_yaml(tmp_path: Path) -> None:
    (tmp_path / "workspace.yaml").write_text("load_from:\n  - python_module: from_yaml\n")
    (tmp_path / "workspace.yml").write_text("load_from:\n  - python_module: from_yml\n")
    (tmp_path / "pyproject.toml").write_text('[tool.runtime]\nmodule_name = "from_toml"\n')
    assert find_default_workspace(tmp_path) == tmp_path / "workspace.yaml"
    assert [s.name for s in resolve(tmp_path)] == ["from_yaml"]


def test_default_workspace_yml(tmp_path: Path) -> None:
    (tmp_path / "workspace.yml").write_text("load_from:\n  - python_module: from_yml\n")
    (tmp_path / "pyproject.toml").write_text('[tool.runtime]\nmodule_name = "from_toml"\n')
    assert [s.name for s in resolve(tmp_path)] == ["from_yml"]


def test_default_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runtime]\nmodule_name = "from_toml"\n')
    [spec] = resolve(tmp_path)
    assert (spec.name, spec.working_directory) == ("from_toml", str(tmp_path))


def test_no_target_and_no_workspace_says_what_to_create(tmp_path: Path) -> None:
    # A pyproject.toml without [tool.runtime] is not a workspace.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_default_workspace(tmp_path) is None
    message = resolve_error(tmp_path)
    assert message.startswith(
        f"No target given and {tmp_path} has no workspace.yaml, workspace.yml or pyproject.toml "
        "with a [tool.runtime] table; create workspace.yaml"
    )
    assert "-f FILE, -m MODULE or -w WORKSPACE" in message


# ---------------------------------------------------------------- mixed kinds


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("-w", "w.yaml", "-f", "a.py"),
            "-w/--workspace cannot be combined with -f/--python-file;",
        ),
        (
            ("-w", "w.yaml", "-m", "m", "--package-name", "p"),
            "-w/--workspace cannot be combined with -m/--module-name and --package-name;",
        ),
        (
            ("-f", "a.py", "--grpc-port", "1"),
            "-f/--python-file cannot be combined with --grpc-port;",
        ),
        (
            ("-m", "m", "--grpc-host", "h", "--grpc-socket", "s"),
            "-m/--module-name cannot be combined with --grpc-host and --grpc-socket;",
        ),
        (
            ("-w", "w.yaml", "--grpc-port", "1"),
            "-w/--workspace cannot be combined with --grpc-port;",
        ),
        (
            ("-w", "w.yaml", "-a", "defs"),
            "-a/--attribute applies to -f/-m/--package-name targets, not with -w/--workspace.",
        ),
        (
            ("--grpc-port", "1", "-d", "x"),
            "-d/--working-directory applies to -f/-m/--package-name targets, not with --grpc-port.",
        ),
        (
            ("-a", "defs", "-d", "x"),
            "-a/--attribute and -d/--working-directory apply to -f/-m/--package-name targets, "
            "not on their own.",
        ),
    ],
)
def test_mixed_target_kinds_name_the_conflicting_flags(
    tmp_path: Path, argv: tuple[str, ...], expected: str
) -> None:
    assert resolve_error(tmp_path, *argv).startswith(expected)
