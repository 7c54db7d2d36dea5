"""The `runtime` command line.

Each command group lives in its own module exposing `register(subparsers)`.
Only the group named on the command line is imported: `runtime api grpc`
starts every code server, and must not pay for the other commands' imports.
argparse (stdlib) keeps start-up fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

# Command name -> module that registers it, in help order.
COMMAND_MODULES: dict[str, str] = {
    "api": "runtime.cli.api",
    "workspace": "runtime.cli.workspace_cmd",
    "job": "runtime.cli.job_cmd",
    "run": "runtime.cli.run_cmd",
    "instance": "runtime.cli.instance_cmd",
    "webserver": "runtime.cli.webserver_cmd",
    "daemon": "runtime.cli.daemon_cmd",
    "schedule": "runtime.cli.schedule_cmd",
    "sensor": "runtime.cli.sensor_cmd",
    "dev": "runtime.cli.dev_cmd",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one command group, or for all of them when `command` is None."""
    from runtime.version import __version__

    parser = argparse.ArgumentParser(
        prog="runtime",
        description="Load code locations, launch and follow runs.",
    )
    parser.add_argument("--version", action="version", version=f"runtime {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [command] if command in COMMAND_MODULES else list(COMMAND_MODULES)
    for name in names:
        importlib.import_module(COMMAND_MODULES[name]).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list[0] if args_list else None)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from runtime.errors import RuntimeFrameworkError

    try:
        result = handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RuntimeFrameworkError as exc:
        # Misuse and bad input: a sentence, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:
        errors = _leaves(group)
        if not all(isinstance(e, RuntimeFrameworkError) for e in errors):
            raise
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`runtime run logs ID | head`): not an error.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(result or 0)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
