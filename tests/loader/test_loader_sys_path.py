"""Where a python_file target's imports come from: the working directory, then the file's folder.

A file beside its helper modules must load however it is named (CLI `-f` from
another directory, workspace.yaml in a parent folder), and its functions must
be importable by module name in worker processes (cpu_bound ops).
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from runtime.loader.load import load_repository
from runtime.loader.target import LoadTarget

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Write = Callable[[str, str], Path]


# The module names are unique to this test file: the in-process tests register
# them in sys.modules, and another test's module of the same name would shadow them.
HELPERS = """
def double(value: int) -> int:
    return 2 * value
"""

PIPELINE = """
import multiprocessing

import sibling_helpers_for_sys_path_test as helpers
from runtime import Definitions, job, op


@op(cpu_bound=True)
def crunch() -> int:
    # Runs in a worker process, which imports this file by its module name.
    return helpers.double(21) * 1000 + (multiprocessing.current_process().name != "MainProcess")


@op
def check(crunch: int) -> None:
    assert crunch == 42001, f"crunch returned {crunch}: not 42 from a worker process"


@job
def crunch_job() -> None:
    check(crunch())


defs = Definitions(jobs=[crunch_job])
"""


def write_project(write: Write) -> Path:
    """project/pipelines/etl_sys_path_test.py importing its sibling; returns the file."""
    write("project/pipelines/sibling_helpers_for_sys_path_test.py", HELPERS)
    return write("project/pipelines/etl_sys_path_test.py", PIPELINE)


def runtime_cli(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )


# ------------------------------------------------------------------ in process


def test_working_directory_first_then_the_files_folder(write: Write, tmp_path: Path) -> None:
    path = write_project(write)
    project, folder = tmp_path / "project", path.parent
    repo = load_repository(LoadTarget(python_file=str(path), working_directory=str(project)))
    assert "crunch_job" in repo.job_names()
    assert sys.path[:2] == [str(project), str(folder)]
    # Importable by its base name, as a worker process will import it: a fresh
    # search of sys.path finds this very file.
    found = importlib.machinery.PathFinder.find_spec("etl_sys_path_test")
    assert found is not None and found.origin == str(path)
    assert sys.modules["etl_sys_path_test"].__file__ == str(path)


def test_the_files_folder_as_working_directory_is_on_sys_path_once(
    write: Write, tmp_path: Path
) -> None:
    path = write_project(write)
    load_repository(LoadTarget(python_file=str(path), working_directory=str(path.parent)))
    assert sys.path[0] == str(path.parent)
    assert sys.path.count(str(path.parent)) == 1


def test_a_file_already_on_sys_path_moves_behind_the_working_directory(
    write: Write, tmp_path: Path
) -> None:
    path = write_project(write)
    project = tmp_path / "project"
    sys.path[:0] = [str(path.parent), str(project)]
    load_repository(LoadTarget(python_file=str(path), working_directory=str(project)))
    assert sys.path[:2] == [str(project), str(path.parent)]
    assert sys.path.count(str(project)) == sys.path.count(str(path.parent)) == 1


def test_a_module_of_the_same_name_in_the_working_directory_gets_a_private_name(
    write: Write, tmp_path: Path
) -> None:
    path = write_project(write)
    project = tmp_path / "project"
    write("project/etl_sys_path_test.py", "RAISE = 1 / 0\n")
    repo = load_repository(LoadTarget(python_file=str(path), working_directory=str(project)))
    assert "crunch_job" in repo.job_names()
    assert "etl_sys_path_test" not in sys.modules
    assert sys.modules["__runtime_location__etl_sys_path_test"].__file__ == str(path)


# ------------------------------------------------------------------ through the CLI


def test_cli_file_in_a_subfolder_loads_from_another_directory(write: Write, tmp_path: Path) -> None:
    path = write_project(write)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = os.path.relpath(path, elsewhere)
    listed = runtime_cli("workspace", "list", "-f", relative, cwd=elsewhere, home=tmp_path / "h")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:3] == ["etl_sys_path_test", "loaded", "1"], (
        listed.stdout
    )


def test_workspace_yaml_file_in_a_subfolder_loads(write: Write, tmp_path: Path) -> None:
    write_project(write)
    workspace = write(
        "project/workspace.yaml", "load_from:\n  - python_file: pipelines/etl_sys_path_test.py\n"
    )
    listed = runtime_cli(
        "workspace", "list", "-w", str(workspace), cwd=tmp_path, home=tmp_path / "h"
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:3] == ["etl_sys_path_test", "loaded", "1"], (
        listed.stdout
    )


@pytest.mark.timeout(90)
def test_cpu_bound_op_of_a_file_in_a_subfolder_runs_in_a_worker_process(
    write: Write, tmp_path: Path
) -> None:
    path = write_project(write)
    project = tmp_path / "project"
    executed = runtime_cli(
        "job",
        "execute",
        "-f",
        str(path.relative_to(project)),
        "-j",
        "crunch_job",
        cwd=project,
        home=tmp_path / "h",
    )
    assert executed.returncode == 0, executed.stdout + executed.stderr
    assert "RUN_SUCCESS" in executed.stdout, executed.stdout
