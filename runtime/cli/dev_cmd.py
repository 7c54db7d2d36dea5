"""`runtime dev [targets] [--host 127.0.0.1] [--port 3000]`: the workspace, the daemon and the
web UI in one asyncio process, as `dagster dev` does.

The port is bound before any code loads (a port in use is reported at once),
and a daemon already running on the instance is refused before that. Once the
locations loaded and the daemon runs, the URL is printed. SIGINT or SIGTERM
stop the web server, the daemon, every run and every code server within a few
seconds; a second signal exits at once. Needs the `web` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.cli.common import specs_from_args
from runtime.cli.daemon_cmd import add_daemon_arguments
from runtime.cli.webserver_cmd import add_server_arguments
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse

    from runtime.cli.webserver_cmd import ServerPlan
    from runtime.daemon.options import DaemonOptions
    from runtime.workspace.spec import LocationSpec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "load the workspace, run the daemon and serve the web UI in one process"
    parser = subparsers.add_parser("dev", help=text, description=text)
    add_target_arguments(parser)
    add_server_arguments(parser)
    add_daemon_arguments(parser)
    parser.set_defaults(handler=_dev)


def _dev(args: argparse.Namespace) -> int:
    from runtime.cli.daemon_cmd import configure_logging, daemon_options, run_until_signalled
    from runtime.cli.webserver_cmd import plan_server

    options = daemon_options(args)
    if options is None:
        return 1
    specs = specs_from_args(args)
    if specs is None:
        return 1
    plan = plan_server(args)
    if plan is None:
        return 1
    import logging

    configure_logging()
    logging.getLogger("uvicorn").setLevel(logging.INFO if args.access_log else logging.WARNING)
    try:
        return run_until_signalled("runtime dev", lambda: _main(specs, args, options, plan))
    finally:
        plan.sock.close()


async def _main(
    specs: list[LocationSpec], args: argparse.Namespace, options: DaemonOptions, plan: ServerPlan
) -> int:
    import sys

    from runtime.cli.daemon_cmd import refuse_if_a_daemon_runs
    from runtime.cli.webserver_cmd import serve_workspace
    from runtime.daemon.daemon import Daemon
    from runtime.errors import RuntimeFrameworkError
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance

    try:
        async with Instance.from_home() as instance:
            await refuse_if_a_daemon_runs(instance)
            async with (
                Workspace.from_specs(
                    specs, instance=instance, startup_timeout=args.startup_timeout
                ) as ws,
                Daemon(ws, options=options),
            ):
                await serve_workspace(ws, plan, name="runtime dev")
    except RuntimeFrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover (serving ends only by cancellation)
