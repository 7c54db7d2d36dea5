"""Imports that raise: the user's traceback, the sys.path hints, and the import timings."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from runtime.errors import LoadError
from runtime.loader.import_recorder import ImportRecorder
from runtime.loader.load import load_repository
from runtime.loader.target import LoadTarget
from runtime.protocol.error_info import format_user_traceback

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Write = Callable[[str, str], Path]


DEFS = """
from runtime import Definitions, asset

@asset
def thing() -> int:
    return 1

defs = Definitions(assets=[thing])
"""


def test_import_that_raises_keeps_the_users_traceback(write: Write) -> None:
    path = write("raises_at_import.py", "x = 1\n\ndef boom():\n    return 1 / 0\n\nboom()\n")
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path)))
    error = caught.value
    assert str(error) == f"Importing file {path} raised ZeroDivisionError: division by zero"
    assert isinstance(error.__cause__, ZeroDivisionError)
    text = format_user_traceback(error.__cause__)
    assert f'File "{path}", line 6, in <module>' in text
    assert "return 1 / 0" in text
    # The loader's own frames and importlib's are noise to the user.
    assert "runtime/loader" not in text and "importlib" not in text
    assert error.hints == []


def test_sys_exit_at_import(write: Write) -> None:
    path = write("exits_at_import.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(LoadError, match=r"called sys.exit\(3\)"):
        load_repository(LoadTarget(python_file=str(path)))


def test_relative_import_in_a_file_hints_at_loading_a_module(write: Write, tmp_path: Path) -> None:
    write("shop/__init__.py", "")
    write("shop/helpers.py", "VALUE = 1\n")
    path = write("shop/defs.py", "from .helpers import VALUE\n" + DEFS)
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path)))
    (hint,) = caught.value.hints
    assert "relative imports" in hint
    assert f"--module-name shop.defs --working-directory {tmp_path}" in hint
    # ...and the hint works.
    repo = load_repository(LoadTarget(module_name="shop.defs", working_directory=str(tmp_path)))
    assert [a.key for a in repo.assets] == ["thing"]


def test_sibling_package_off_sys_path_hints_at_working_directory(
    write: Write, tmp_path: Path
) -> None:
    write("project/shared_utils/__init__.py", "FACTOR = 2\n")
    path = write("project/pipelines/defs.py", "import shared_utils\n" + DEFS)
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path)))
    assert "No module named 'shared_utils'" in str(caught.value)
    project = tmp_path / "project"
    assert any(
        f"'shared_utils' is in {project}" in hint and f"--working-directory {project}" in hint
        for hint in caught.value.hints
    )
    # ...and the hint works.
    repo = load_repository(LoadTarget(python_file=str(path), working_directory=str(project)))
    assert [a.key for a in repo.assets] == ["thing"]


def test_timings_name_the_slowest_imports(write: Write) -> None:
    write("slow_dependency/__init__.py", "import time\ntime.sleep(0.3)\n")
    write("slow_dependency/core.py", "import time\ntime.sleep(0.2)\n")
    write("quick_dependency.py", "VALUE = 1\n")
    path = write("uses_slow.py", "import slow_dependency.core\nimport quick_dependency\n" + DEFS)
    recorder = ImportRecorder()
    load_repository(LoadTarget(python_file=str(path)), recorder=recorder)
    timings = recorder.timings()
    slowest = timings.slowest_modules[0]
    # Self time of the package and its submodule, attributed to the top-level name.
    assert slowest.module == "slow_dependency"
    assert 0.5 <= slowest.seconds < 2.0
    assert timings.import_seconds >= slowest.seconds
    names = [t.module for t in timings.slowest_modules]
    assert "uses_slow" in names and "quick_dependency" in names
    assert timings.importing_module is None


def test_timings_survive_a_failed_import(write: Write) -> None:
    write("slow_then_fine.py", "import time\ntime.sleep(0.2)\n")
    path = write("fails_after_slow.py", "import slow_then_fine\nraise ValueError('late')\n")
    recorder = ImportRecorder()
    with pytest.raises(LoadError, match="ValueError: late"):
        load_repository(LoadTarget(python_file=str(path)), recorder=recorder)
    assert recorder.timings().slowest_modules[0].module == "slow_then_fine"


def test_the_module_being_imported_is_visible_from_another_thread(write: Write) -> None:
    gate = threading.Event()
    write("waits_for_gate.py", "import builtins\nbuiltins._runtime_test_gate.wait(10)\n")
    path = write("imports_gated.py", "import waits_for_gate\n" + DEFS)
    import builtins

    builtins._runtime_test_gate = gate  # type: ignore[attr-defined]
    recorder = ImportRecorder()
    errors: list[BaseException] = []

    def load() -> None:
        try:
            load_repository(LoadTarget(python_file=str(path)), recorder=recorder)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while recorder.importing_module != "waits_for_gate" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.importing_module == "waits_for_gate"
        assert recorder.timings().importing_module == "waits_for_gate"
    finally:
        gate.set()
        thread.join(10)
        del builtins._runtime_test_gate  # type: ignore[attr-defined]
    assert errors == []
    assert recorder.importing_module is None


def test_imports_of_other_threads_are_not_recorded(write: Write, tmp_path: Path) -> None:
    import sys

    write("other_thread_module.py", "VALUE = 1\n")
    path = write("records_own_thread.py", DEFS)
    sys.path.insert(0, str(tmp_path))
    recorder = ImportRecorder()
    with recorder.recording():
        thread = threading.Thread(target=__import__, args=("other_thread_module",))
        thread.start()
        thread.join()
    assert "other_thread_module" in sys.modules
    load_repository(LoadTarget(python_file=str(path)), recorder=recorder)
    assert "other_thread_module" not in [t.module for t in recorder.timings().slowest_modules]


def test_only_one_recorder_records_at_a_time() -> None:
    with ImportRecorder().recording(), pytest.raises(RuntimeError, match="already recording"):
        with ImportRecorder().recording():
            pass
