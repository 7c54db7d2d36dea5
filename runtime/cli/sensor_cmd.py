"""`runtime sensor list | start | stop | preview | ticks | cursor NAME`: the workspace's sensors.

See runtime.cli.instigators for what each does; `cursor NAME --set VALUE |
--delete` replaces or removes the cursor the next tick receives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.cli.instigators import register_cursor_command, register_instigator_commands

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = register_instigator_commands(subparsers, "sensor")
    register_cursor_command(commands)
