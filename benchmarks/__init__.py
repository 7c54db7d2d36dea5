"""Benchmarks for runtime: `python -m benchmarks --help`.

Scenarios (one module each): load (with the plain-import floor), workspace,
launch, steps, events. Each prints rows into one table beside Dagster's figures
when `--peer-python` names an interpreter with dagster installed
(benchmarks/peers/setup_dagster.sh makes one). Results go to
benchmarks/results/<timestamp>.json.
"""
