"""The committed betterproto stubs are exactly what proto/regenerate.py produces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "runtime" / "protocol" / "_generated"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.mark.timeout(120)
def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    fresh = tmp_path / "generated"
    # protoc finds the betterproto plugin, a console script, on PATH.
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [sys.executable, str(ROOT / "proto" / "regenerate.py"), str(fresh)],
        env=env,
        check=True,
        timeout=110,
    )
    committed, generated = _files(COMMITTED), _files(fresh)
    assert sorted(committed) == sorted(generated), "stub files differ: run `make proto`"
    for name, content in generated.items():
        assert committed[name] == content, f"{name} is stale: run `make proto` and commit it"
