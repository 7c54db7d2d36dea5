"""Regenerate the betterproto stubs committed under runtime/protocol/_generated.

Usage: python proto/regenerate.py OUTPUT_DIR

The venv's bin/ must be on PATH: protoc finds the betterproto plugin there.
The stub test runs this into a temporary folder and compares the result with
the committed files, so the two can never drift apart silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILES = sorted(p.name for p in PROTO_DIR.glob("*.proto"))


def generate(output_dir: Path) -> None:
    """Write freshly generated stubs into output_dir, replacing what was there."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_DIR}",
                f"--python_betterproto_out={scratch}",
                *PROTO_FILES,
            ],
            cwd=PROTO_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if output_dir.exists():
            shutil.rmtree(output_dir)
        shutil.copytree(scratch, output_dir)


if __name__ == "__main__":
    generate(Path(sys.argv[1]))
