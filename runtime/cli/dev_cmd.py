"""`runtime dev [targets] [--host 127.0.0.1] [--port 3000]`: the workspace, the daemon and
the web UI in one process, as `dagster dev` does."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from runtime.cli.daemon_cmd import add_daemon_arguments
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "load the workspace, run the daemon and serve the web UI in one process"
    parser = subparsers.add_parser("dev", help=text, description=text)
    add_target_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        default=3000,
        help="port to listen on (default: 3000; 0 picks one)",
    )
    add_daemon_arguments(parser)
    parser.set_defaults(handler=_dev)


def _dev(args: argparse.Namespace) -> int:
    print(
        "error: runtime dev needs the web server (runtime.web), which is not part of this build yet.",
        file=sys.stderr,
    )
    return 1
