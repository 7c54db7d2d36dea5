"""The `runtime` command line.

Each command group lives in its own module exposing `register(subparsers)`;
the modules import their heavy dependencies inside the handlers, so parsing
the command line stays cheap. argparse (stdlib) keeps start-up fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

# Modules that register a command group, in help order.
COMMAND_MODULES: tuple[str, ...] = ("runtime.cli.api", "runtime.cli.workspace_cmd")


def build_parser() -> argparse.ArgumentParser:
    from runtime.version import __version__

    parser = argparse.ArgumentParser(
        prog="runtime",
        description="Load code locations, launch and follow runs.",
    )
    parser.add_argument("--version", action="version", version=f"runtime {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    result = handler(args)
    return int(result or 0)
