"""`runtime daemon run [targets]` and `runtime daemon status`: the daemon as a process.

`run` loads the workspace and runs the daemon (schedules, sensors, the run
queue, run monitoring) in one asyncio process until SIGINT or SIGTERM; a
second signal exits at once (code servers follow their parent out). A daemon
already running on the instance makes it exit 1 with one line saying which.
`status` reads the daemon's lease and heartbeats from the instance, loading
no code.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from runtime.cli.common import specs_from_args
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from runtime.daemon.options import DaemonOptions
    from runtime.instance.instance import Instance
    from runtime.workspace.spec import LocationSpec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "daemon", help="run the daemon: schedules, sensors, the run queue, run monitoring"
    )
    commands = parser.add_subparsers(dest="daemon_command", metavar="COMMAND", required=True)
    text = "load the workspace and run the daemon until SIGINT or SIGTERM"
    run = commands.add_parser("run", help=text, description=text)
    add_target_arguments(run)
    add_daemon_arguments(run)
    run.set_defaults(handler=_run)

    text = "the daemon's lease and each loop's last heartbeat (loads no code)"
    status = commands.add_parser("status", help=text, description=text)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    """The daemon's tuning flags, shared with `runtime dev`."""
    group = parser.add_argument_group("daemon")
    group.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long a location may take to load (default: 180)",
    )
    group.add_argument(
        "--tick-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long one schedule or sensor evaluation may take (default: 60)",
    )
    group.add_argument(
        "--run-start-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="fail a run STARTING for longer than this (default: 180)",
    )
    group.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="another daemon may take over once this one's heartbeat is this stale (default: 30)",
    )


def daemon_options(args: argparse.Namespace) -> DaemonOptions | None:
    """The DaemonOptions the flags ask for, or None after printing which flag is wrong."""
    from runtime.daemon.options import DaemonOptions

    for flag in ("startup_timeout", "tick_timeout", "run_start_timeout", "heartbeat_timeout"):
        value = getattr(args, flag)
        if not value > 0:
            print(
                f"error: --{flag.replace('_', '-')} must be positive, got {value}.", file=sys.stderr
            )
            return None
    interval = min(5.0, args.heartbeat_timeout / 3)
    return DaemonOptions(
        tick_timeout=args.tick_timeout,
        start_timeout=args.run_start_timeout,
        heartbeat_timeout=args.heartbeat_timeout,
        heartbeat_interval=interval,
    )


def configure_logging() -> None:
    """User code's output and the daemon's and supervisor's messages reach stderr."""
    import logging

    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")


def run_until_signalled(program: str, main: Callable[[], Awaitable[int]]) -> int:
    """Run `main()` in a new event loop until it returns or SIGINT or SIGTERM stop it (0);
    a second signal exits the process at once."""
    from functools import partial

    import anyio

    from runtime.cli.webserver_cmd import stop_on_signals

    async def body() -> int:
        code = 0  # stopped by a signal
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(stop_on_signals, tg.cancel_scope, name=program))
            code = await main()
            tg.cancel_scope.cancel()
        return code

    return anyio.run(body)


async def refuse_if_a_daemon_runs(instance: Instance) -> None:
    """Raise DaemonAlreadyRunningError before loading any code if another daemon holds the lease."""
    from runtime.daemon.errors import DaemonAlreadyRunningError
    from runtime.daemon.lease import DAEMON_LEASE, describe_holder

    lease = await instance.storage.get_lease(DAEMON_LEASE)
    if lease is not None and lease.is_held(time.time()):
        text = await describe_holder(instance, lease)
        raise DaemonAlreadyRunningError(text[:1].upper() + text[1:])


def _run(args: argparse.Namespace) -> int:
    options = daemon_options(args)
    if options is None:
        return 1
    specs = specs_from_args(args)
    if specs is None:
        return 1
    configure_logging()
    return run_until_signalled("runtime daemon", lambda: _daemon(specs, args, options))


async def _daemon(
    specs: list[LocationSpec], args: argparse.Namespace, options: DaemonOptions
) -> int:
    import anyio

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
                print(
                    f"runtime daemon: {describe_workspace(ws)}; instance {instance.home} "
                    "(Ctrl-C to stop)",
                    flush=True,
                )
                await anyio.sleep_forever()
    except RuntimeFrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover (sleep_forever ends only by cancellation)


def describe_workspace(ws: Any) -> str:
    """`2 of 2 locations loaded; 1 schedule, 3 sensors`."""
    from runtime.daemon.instigators import list_instigators

    loaded = sum(loc.status == "loaded" for loc in ws.locations.values())
    schedules = len(list_instigators(ws.locations, "schedule"))
    sensors = len(list_instigators(ws.locations, "sensor"))
    return (
        f"{loaded} of {len(ws.locations)} locations loaded; "
        f"{schedules} schedule{'s' * (schedules != 1)}, {sensors} sensor{'s' * (sensors != 1)}"
    )


def _status(args: argparse.Namespace) -> int:
    import anyio

    from runtime.errors import RuntimeFrameworkError
    from runtime.instance.instance import Instance

    async def main() -> int:
        try:
            instance = Instance.from_home()
            if not instance.home.is_dir():
                facts: dict[str, Any] = {"home": str(instance.home), "running": False, "loops": []}
            else:
                async with instance:
                    facts = await _facts(instance)
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            from runtime.cli.json_output import print_json

            print_json(facts)
            return 0
        _print_status(facts)
        return 0

    return anyio.run(main)


async def _facts(instance: Instance) -> dict[str, Any]:
    from runtime.daemon.lease import DAEMON_LEASE

    now = time.time()
    lease = await instance.storage.get_lease(DAEMON_LEASE)
    running = lease is not None and lease.is_held(now)
    beats = await instance.get_daemon_heartbeats()
    holder = lease.holder if lease is not None else None
    return {
        "home": str(instance.home),
        "running": running,
        "holder": holder if running else None,
        "lease_expires_at": lease.expires_at if running and lease is not None else None,
        "loops": [
            {
                "name": beat.daemon_id,
                "holder": beat.info.get("holder"),
                "last_heartbeat_at": beat.last_heartbeat_at,
                "last_iteration_at": beat.info.get("last_iteration_at"),
                "iterations": beat.info.get("iterations"),
                "errors": beat.info.get("errors", []),
            }
            for beat in beats
        ],
    }


def _print_status(facts: dict[str, Any]) -> None:
    from runtime.cli.common import format_table

    now = time.time()
    if facts["running"]:
        print(f"daemon running: {facts['holder']}")
    else:
        print(f"no daemon running on the instance at {facts['home']}")
    if not facts["loops"]:
        return
    rows = [
        (
            loop["name"],
            f"{now - loop['last_heartbeat_at']:.0f} s ago",
            str(loop["iterations"] or 0),
            (loop["errors"] or ["-"])[-1].splitlines()[0],
        )
        for loop in facts["loops"]
    ]
    print(format_table(("LOOP", "HEARTBEAT", "ITERATIONS", "LAST ERROR"), rows))
