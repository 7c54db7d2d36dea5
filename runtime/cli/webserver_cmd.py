"""`runtime webserver [targets] [--host H] [--port P] [--auth-token T]`: the UI and HTTP API.

Loads the workspace, serves it in one asyncio process, prints the URL once
listening, and stops everything on SIGINT or SIGTERM (a second one exits at
once; code servers follow their parent out). Needs the `web` extra.

`add_server_arguments`, `plan_server`, `serve_workspace` and `stop_on_signals`
are the pieces `runtime dev` (web server and daemon in one process) reuses.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.cli.common import specs_from_args
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse
    import socket

    import anyio

    from runtime.host.workspace import Workspace
    from runtime.workspace.spec import LocationSpec

TOKEN_ENV_VAR = "RUNTIME_WEB_TOKEN"
WEB_PACKAGES = ("starlette", "uvicorn")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "webserver",
        help="serve the UI and HTTP API over a workspace",
        description="Load every code location and serve the UI and the HTTP API (/api/...).",
    )
    add_target_arguments(parser)
    add_server_arguments(parser)
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long a location may take to load (default: 180)",
    )
    parser.set_defaults(handler=_serve)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --auth-token, --access-log (shared with `runtime dev`)."""
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
    parser.add_argument(
        "--auth-token",
        default=None,
        metavar="TOKEN",
        help=f"require this token on every request (default: ${TOKEN_ENV_VAR}); "
        "browsers open /?token=TOKEN once",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")


def missing_web_packages() -> list[str]:
    """The packages of the `web` extra that are not installed."""
    missing = []
    for name in WEB_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken install, or blocked in sys.modules
            found = False
        if not found:
            missing.append(name)
    return missing


@dataclass
class ServerPlan:
    """What `add_server_arguments` asked for, checked, with the port already bound."""

    host: str
    token: str | None
    access_log: bool
    sock: socket.socket


def plan_server(args: argparse.Namespace) -> ServerPlan | None:
    """Check the web extra and the flags, warn when exposed, bind the port (before any slow
    start-up, so a port in use is reported at once); None after printing why not.

    Raises RuntimeFrameworkError naming the address when it cannot be bound.
    """
    missing = missing_web_packages()
    if missing:
        print(
            f"error: the web server needs {' and '.join(missing)}: pip install 'runtime[web]'",
            file=sys.stderr,
        )
        return None
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a port number (0-65535).", file=sys.stderr)
        return None
    token = args.auth_token or os.environ.get(TOKEN_ENV_VAR) or None
    from runtime.web.server import bind, is_loopback

    if not is_loopback(args.host):
        if token is None:
            print(
                f"warning: listening on {args.host} without a token: anyone who can reach this "
                f"machine can launch and cancel runs. Set --auth-token or {TOKEN_ENV_VAR}, "
                "or listen on 127.0.0.1.",
                file=sys.stderr,
            )
        else:
            print(
                f"warning: listening on {args.host}: requests need the token; "
                "the connection is not encrypted.",
                file=sys.stderr,
            )
    return ServerPlan(
        host=args.host, token=token, access_log=args.access_log, sock=bind(args.host, args.port)
    )


async def serve_workspace(
    ws: Workspace, plan: ServerPlan, *, name: str = "runtime webserver"
) -> None:
    """Serve the UI and API over `ws` as planned, print the URL, and serve until cancelled."""
    import anyio

    from runtime.web import create_app, is_loopback, serve
    from runtime.web.server import LOOPBACK_NAMES

    # Loopback servers answer only to their own names (no DNS rebinding).
    hosts = {*LOOPBACK_NAMES, plan.host} if is_loopback(plan.host) else None
    app = create_app(ws, auth_token=plan.token, allowed_hosts=hosts)
    async with serve(app, plan.host, 0, access_log=plan.access_log, sock=plan.sock) as at:
        loaded = sum(loc.status == "loaded" for loc in ws.locations.values())
        print(
            f"{name}: {loaded} of {len(ws.locations)} locations loaded; "
            f"serving on {at.url} (Ctrl-C to stop)",
            flush=True,
        )
        await anyio.sleep_forever()


async def stop_on_signals(scope: anyio.CancelScope, *, name: str = "runtime webserver") -> None:
    """Cancel `scope` on the first SIGINT or SIGTERM; exit at once on a second one."""
    import signal

    import anyio

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        async for _ in received:
            if scope.cancel_called:
                # A second signal: the user does not want to wait (code servers
                # follow their parent out through their parent-death signal).
                print(f"{name}: stopping now", file=sys.stderr, flush=True)
                os._exit(130)
            print(f"{name}: stopping", file=sys.stderr, flush=True)
            scope.cancel()


def _serve(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if specs is None:
        return 1
    plan = plan_server(args)
    if plan is None:
        return 1
    import logging

    import anyio

    # User code's output and the supervisor's warnings reach the terminal.
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    logging.getLogger("uvicorn").setLevel(logging.INFO if args.access_log else logging.WARNING)
    try:
        return anyio.run(_main, specs, args, plan)
    finally:
        plan.sock.close()


async def _main(specs: list[LocationSpec], args: argparse.Namespace, plan: ServerPlan) -> int:
    import anyio

    from runtime.host.workspace import Workspace

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signals, tg.cancel_scope)
        async with Workspace.from_specs(specs, startup_timeout=args.startup_timeout) as ws:
            await serve_workspace(ws, plan)
    return 0
