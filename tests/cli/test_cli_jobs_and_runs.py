"""`runtime job ...` and `runtime run ...` as a user types them: real processes, a real instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello_world" / "definitions.py"


def runtime_cli(
    *args: str, home: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )


def test_job_list_shows_every_job(tmp_path: Path) -> None:
    result = runtime_cli("job", "list", "-f", str(HELLO), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "etl" in result.stdout and "__ASSET_JOB" in result.stdout


def test_job_execute_follows_the_run_and_run_commands_read_it(tmp_path: Path) -> None:
    executed = runtime_cli(
        "job", "execute", "-f", str(HELLO), "-j", "etl", "--tag", "k=v", home=tmp_path
    )
    assert executed.returncode == 0, executed.stderr
    run_id = executed.stdout.splitlines()[0].strip()
    assert "RUN_SUCCESS" in executed.stdout
    assert f"run {run_id} SUCCESS" in executed.stdout

    listed = runtime_cli("run", "list", home=tmp_path)
    assert run_id in listed.stdout and "SUCCESS" in listed.stdout

    shown = runtime_cli("run", "show", run_id, home=tmp_path)
    assert shown.returncode == 0
    assert "k=v" in shown.stdout
    assert "extract" in shown.stdout and "total" in shown.stdout

    logs = runtime_cli("run", "logs", run_id, home=tmp_path)
    lines = logs.stdout.splitlines()
    assert "RUN_STARTING" in lines[0] and "RUN_SUCCESS" in lines[-1]

    followed = runtime_cli("run", "logs", run_id, "--follow", home=tmp_path)
    assert followed.stdout == logs.stdout


def test_job_launch_prints_the_run_id_and_waits_for_it(tmp_path: Path) -> None:
    launched = runtime_cli("job", "launch", "-f", str(HELLO), "-j", "etl", home=tmp_path)
    assert launched.returncode == 0, launched.stderr
    run_id = launched.stdout.strip()
    shown = runtime_cli("run", "show", run_id, home=tmp_path)
    assert "SUCCESS" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-j", "nope"), "job named 'nope'"),
        (("-j", "etl", "-l", "elsewhere"), "no code location named 'elsewhere'"),
        (("-j", "etl", "--tag", "oops"), "not of the form key=value"),
        (("-j", "etl", "--config", "missing.yaml"), "missing.yaml does not exist"),
    ],
)
def test_job_execute_bad_input_is_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = runtime_cli("job", "execute", "-f", str(HELLO), *args, home=tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_run_config_file_is_validated_with_its_path(tmp_path: Path) -> None:
    code = tmp_path / "configured.py"
    code.write_text(
        "import msgspec\n"
        "from runtime import Definitions, job, op\n"
        "class Cfg(msgspec.Struct):\n"
        "    n: int\n"
        "@op\n"
        "def show(config: Cfg) -> int:\n"
        "    return config.n\n"
        "@job\n"
        "def cfg_job() -> None:\n"
        "    show()\n"
        "defs = Definitions(jobs=[cfg_job])\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("ops:\n  show:\n    config:\n      n: not-a-number\n")
    result = runtime_cli(
        "job", "execute", "-f", str(code), "-j", "cfg_job", "-c", str(bad), home=tmp_path
    )
    assert result.returncode == 1
    assert "$.ops.show.config.n" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text("ops:\n  show:\n    config:\n      n: 3\n")
    result = runtime_cli(
        "job", "execute", "-f", str(code), "-j", "cfg_job", "-c", str(good), home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "result = 3" in result.stdout


def test_run_show_of_an_unknown_run(tmp_path: Path) -> None:
    result = runtime_cli("run", "show", "no-such-run", home=tmp_path)
    assert result.returncode == 1
    assert "no run no-such-run" in result.stderr


def test_listing_never_touches_the_instance(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "instance.yaml").write_text("storage:\n  sqlite: {base_dir: x}\n  bogus: 1\n")
    listed = runtime_cli("workspace", "list", "-f", str(HELLO), home=home, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout or "definitions" in listed.stdout
    assert sorted(p.name for p in home.iterdir()) == ["instance.yaml"]
    # Runs need it: a bad instance.yaml is one line naming the file and key.
    executed = runtime_cli("job", "execute", "-f", str(HELLO), "-j", "etl", home=home, cwd=tmp_path)
    assert executed.returncode == 1
    assert "instance.yaml" in executed.stderr and "bogus" in executed.stderr
    assert "Traceback" not in executed.stderr
