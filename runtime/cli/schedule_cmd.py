"""`runtime schedule list | start | stop | preview | ticks NAME`: the workspace's schedules.

See runtime.cli.instigators for what each does; the daemon (`runtime daemon
run`, `runtime dev`) is what ticks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.cli.instigators import register_instigator_commands

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    register_instigator_commands(subparsers, "schedule")
