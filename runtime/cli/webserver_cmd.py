"""`runtime webserver [targets] [--host H] [--port P] [--auth-token T]`: the UI and HTTP API.

Loads the workspace, serves it in one asyncio process, prints the URL once
listening, and stops everything on SIGINT or SIGTERM (a second one exits at
once; code servers follow their parent out). Needs the `web` extra.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

from runtime.cli.common import specs_from_args
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse
    import signal
    import socket

    import anyio

    from runtime.workspace.spec import LocationSpec

TOKEN_ENV_VAR = "RUNTIME_WEB_TOKEN"
WEB_PACKAGES = ("starlette", "uvicorn")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "serve the UI and HTTP API over a workspace"
    parser = subparsers.add_parser(
        "webserver",
        help=text,
        description="Load every code location and serve the UI and the HTTP API (/api/...).",
    )
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
    parser.add_argument(
        "--auth-token",
        default=None,
        metavar="TOKEN",
        help=f"require this token on every request (default: ${TOKEN_ENV_VAR}); "
        "browsers open /?token=TOKEN once",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long a location may take to load (default: 180)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(handler=_serve)


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


def _serve(args: argparse.Namespace) -> int:
    missing = missing_web_packages()
    if missing:
        print(
            f"error: the web server needs {' and '.join(missing)}: pip install 'runtime[web]'",
            file=sys.stderr,
        )
        return 1
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a port number (0-65535).", file=sys.stderr)
        return 1
    specs = specs_from_args(args)
    if specs is None:
        return 1
    token = args.auth_token or os.environ.get(TOKEN_ENV_VAR) or None
    from runtime.web.server import is_loopback

    if not is_loopback(args.host):
        if token is None:
            print(
                f"warning: listening on {args.host} without a token: anyone who can reach this "
                "machine can launch and cancel runs. Set --auth-token or "
                f"{TOKEN_ENV_VAR}, or listen on 127.0.0.1.",
                file=sys.stderr,
            )
        else:
            print(
                f"warning: listening on {args.host}: requests need the token; "
                "the connection is not encrypted.",
                file=sys.stderr,
            )
    import logging

    import anyio

    # User code's output and the supervisor's warnings reach the terminal.
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    logging.getLogger("uvicorn").setLevel(logging.INFO if args.access_log else logging.WARNING)
    from runtime.web.server import bind

    # Claim the port before loading code: a port in use is reported at once.
    sock = bind(args.host, args.port)
    try:
        return anyio.run(_main, specs, args, token, sock)
    finally:
        sock.close()


async def _main(
    specs: list[LocationSpec], args: argparse.Namespace, token: str | None, sock: socket.socket
) -> int:
    import signal

    import anyio

    from runtime.host.workspace import Workspace
    from runtime.web import create_app, is_loopback, serve
    from runtime.web.server import LOOPBACK_NAMES

    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, tg.cancel_scope, signal.SIGINT, signal.SIGTERM)
        async with Workspace.from_specs(specs, startup_timeout=args.startup_timeout) as ws:
            # Loopback servers answer only to their own names (no DNS rebinding).
            hosts = {*LOOPBACK_NAMES, args.host} if is_loopback(args.host) else None
            app = create_app(ws, auth_token=token, allowed_hosts=hosts)
            async with serve(
                app, args.host, args.port, access_log=args.access_log, sock=sock
            ) as at:
                loaded = sum(loc.status == "loaded" for loc in ws.locations.values())
                print(
                    f"runtime webserver: {loaded} of {len(ws.locations)} locations loaded; "
                    f"serving on {at.url} (Ctrl-C to stop)",
                    flush=True,
                )
                await anyio.sleep_forever()
    return 0


async def _stop_on_signal(scope: anyio.CancelScope, *signals: signal.Signals) -> None:
    import anyio

    with anyio.open_signal_receiver(*signals) as received:
        async for _ in received:
            if scope.cancel_called:
                # A second signal: the user does not want to wait.
                print("runtime webserver: stopping now", file=sys.stderr, flush=True)
                os._exit(130)
            print("runtime webserver: stopping", file=sys.stderr, flush=True)
            scope.cancel()
