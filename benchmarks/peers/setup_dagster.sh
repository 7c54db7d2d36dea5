#!/usr/bin/env bash
# Creates benchmarks/peers/.venv-dagster with Dagster from PyPI, for
# `python -m benchmarks --peer-python benchmarks/peers/.venv-dagster/bin/python`.
# Takes a few minutes; safe to re-run (pip skips what is installed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-dagster"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# dagster-dask: Dagster's dask_executor, for `--executor dask`.
"$venv/bin/python" -m pip install --quiet "${DAGSTER_SPEC:-dagster}" "${DAGSTER_DASK_SPEC:-dagster-dask}"
"$venv/bin/python" -c 'import dagster; print("dagster", dagster.__version__, "installed in '"$venv"'")'
