"""What `runtime schedule ...` and `runtime sensor ...` share: list, start, stop, preview,
ticks (and a sensor's cursor), over a loaded workspace and the instance in RUNTIME_HOME.

Start and stop are stored in the instance and override the definition's
`default_status` from then on; a running daemon picks them up within a
second. `preview` evaluates once in the code location and launches nothing.
Every command takes `--json`.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from runtime.cli.common import format_table, specs_from_args
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from runtime.daemon.instigators import Instigator
    from runtime.host.workspace import Workspace
    from runtime.instance.daemon_records import InstigatorState, TickRecord
    from runtime.instance.instance import Instance
    from runtime.protocol.messages import TickResult

__all__ = ["register_cursor_command", "register_instigator_commands"]


def register_instigator_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], kind: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add `runtime <kind> list|start|stop|preview|ticks`; returns the sub-commands to extend."""
    plural = f"{kind}s"
    parser = subparsers.add_parser(
        kind, help=f"list, start, stop, preview {plural} and read their ticks"
    )
    commands = parser.add_subparsers(dest=f"{kind}_command", metavar="COMMAND", required=True)

    def command(
        name: str, text: str, handler: Any, *, named: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        if named:
            sub.add_argument("name", metavar="NAME", help=f"the {kind}")
            sub.add_argument(
                "-l", "--location", help=f"its location (when the {kind} name is not unique)"
            )
        add_target_arguments(sub)
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(handler=lambda args: _run(args, kind, handler))
        return sub

    command("list", f"every {kind} of the workspace, its status and last tick", _list, named=False)
    command("start", f"start a {kind} (stored in the instance; overrides default_status)", _start)
    command("stop", f"stop a {kind} (stored in the instance; overrides default_status)", _stop)
    preview = command(
        "preview", f"evaluate a {kind} once as its next tick would, launching nothing", _preview
    )
    if kind == "sensor":
        preview.add_argument("--cursor", help="evaluate with this cursor instead of the stored one")
    ticks = command("ticks", f"the stored ticks of a {kind}, newest first", _ticks)
    ticks.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    ticks.add_argument(
        "--status",
        action="append",
        choices=["started", "success", "skipped", "failure"],
        help="only ticks with this status (repeatable)",
    )
    return commands


def register_cursor_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `runtime sensor cursor NAME [--set VALUE | --delete]`."""
    text = "show a sensor's stored cursor, or set or delete it"
    sub = commands.add_parser("cursor", help=text, description=text)
    sub.add_argument("name", metavar="NAME", help="the sensor")
    sub.add_argument("-l", "--location", help="its location (when the sensor name is not unique)")
    choice = sub.add_mutually_exclusive_group()
    choice.add_argument("--set", dest="set_cursor", metavar="VALUE", help="store this cursor")
    choice.add_argument("--delete", action="store_true", help="remove the cursor")
    add_target_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(handler=lambda args: _run(args, "sensor", _cursor))


# --- running a command over the workspace and the instance ---------------------------


def _run(
    args: argparse.Namespace,
    kind: str,
    body: Callable[[argparse.Namespace, str, Workspace, Instance], Awaitable[int]],
) -> int:
    specs = specs_from_args(args)
    if specs is None:
        return 1
    import anyio

    from runtime.errors import RuntimeFrameworkError

    async def main() -> int:
        from runtime.host.workspace import Workspace
        from runtime.instance.instance import Instance

        try:
            async with (
                Instance.from_home() as instance,
                Workspace.from_specs(specs, instance=instance, restart=False) as ws,
            ):
                return await body(args, kind, ws, instance)
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return anyio.run(main)


def _find(args: argparse.Namespace, kind: str, ws: Workspace) -> Instigator:
    from runtime.daemon.instigators import find_instigator

    return find_instigator(ws.locations, kind, args.name, args.location)


# --- the commands ---------------------------------------------------------------------


async def _list(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    from runtime.daemon.instigators import list_instigators

    rows: list[dict[str, Any]] = []
    for instigator in list_instigators(ws.locations, kind):
        state = await instance.get_instigator_state(instigator.id)
        ticks = await instance.get_ticks(instigator.id, limit=1)
        rows.append(_row(instigator, state, ticks[0] if ticks else None))
    for location in ws.locations.values():
        if location.snapshot is None and location.error is not None:
            print(
                f"warning: location {location.name!r} did not load, its {kind}s are not listed: "
                f"{location.error.first_line}",
                file=sys.stderr,
            )
    if args.json:
        from runtime.cli.json_output import print_json

        print_json(rows)
        return 0
    if kind == "schedule":
        header: tuple[str, ...] = (
            "LOCATION",
            "SCHEDULE",
            "JOB",
            "CRON",
            "STATUS",
            "NEXT TICK",
            "LAST TICK",
        )
        table = [
            (
                r["location"],
                r["name"],
                r["job"] or "-",
                f"{r['cron_schedule']} ({r['execution_timezone']})",
                _status_text(r),
                r["next_tick_iso"] or "-",
                _last_tick_text(r["last_tick"], r.get("execution_timezone")),
            )
            for r in rows
        ]
    else:
        header = ("LOCATION", "SENSOR", "JOB", "INTERVAL", "STATUS", "CURSOR", "LAST TICK")
        table = [
            (
                r["location"],
                r["name"],
                r["job"] or "-",
                f"{r['minimum_interval_seconds']} s",
                _status_text(r),
                _short(r["cursor"]),
                _last_tick_text(r["last_tick"], None),
            )
            for r in rows
        ]
    if not table:
        print(f"no {kind}s in this workspace")
        return 0
    print(format_table(header, table))
    return 0


async def _start(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    return await _set_status(args, kind, ws, instance, running=True)


async def _stop(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    return await _set_status(args, kind, ws, instance, running=False)


async def _set_status(
    args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance, *, running: bool
) -> int:
    from runtime.daemon.instigators import effective_status, set_status
    from runtime.instance.daemon_records import InstigatorStatus

    instigator = _find(args, kind, ws)
    before = effective_status(instigator, await instance.get_instigator_state(instigator.id))
    wanted = InstigatorStatus.RUNNING if running else InstigatorStatus.STOPPED
    state = await set_status(instance, instigator, wanted, now=time.time())
    if args.json:
        from runtime.cli.json_output import print_json

        print_json(_row(instigator, state, None))
        return 0
    was = "already " if before is wanted else ""
    print(f"{instigator.label} is {was}{wanted}")
    return 0


async def _preview(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    from runtime.daemon.preview import preview
    from runtime.daemon.ticks import describe_error

    instigator = _find(args, kind, ws)
    state = await instance.get_instigator_state(instigator.id)
    given: dict[str, Any] = {}
    if kind == "sensor" and args.cursor is not None:
        given["cursor"] = args.cursor
    tick_time, result = await preview(ws, instigator, state, now=time.time(), **given)
    if args.json:
        from runtime.cli.json_output import print_json

        print_json(_preview_row(instigator, tick_time, result))
        return 1 if result.error is not None else 0
    print(f"{instigator.label}, tick at {_when(tick_time, _timezone(instigator))}:")
    if result.error is not None:
        print(f"  error: {describe_error(result.error)}")
        return 1
    if result.run_requests:
        for request in result.run_requests:
            key = f" run key {request.run_key!r}" if request.run_key else ""
            print(f"  would launch job {request.job_name!r}{key}")
            if request.run_config:
                print(f"    run config {request.run_config}")
            if request.tags:
                print(f"    tags {request.tags}")
    else:
        print(f"  skip: {result.skip_reason or 'no run requested'}")
    if kind == "sensor":
        print(f"  cursor after: {result.cursor!r} (not stored)")
    return 0


async def _ticks(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    from runtime.instance.daemon_records import TickStatus

    if args.limit < 1:
        print(f"error: --limit {args.limit} must be at least 1.", file=sys.stderr)
        return 1
    instigator = _find(args, kind, ws)
    statuses = [TickStatus(s) for s in args.status] if args.status else None
    ticks = await instance.get_ticks(instigator.id, limit=args.limit, statuses=statuses)
    if args.json:
        from runtime.cli.json_output import print_json

        print_json([_tick_row(tick) for tick in ticks])
        return 0
    if not ticks:
        print(f"{instigator.label} has no ticks yet")
        return 0
    tz = _timezone(instigator)
    rows = [
        (
            _when(tick.tick_time, tz),
            str(tick.status),
            _runs_text(tick.run_ids),
            _detail(tick),
        )
        for tick in ticks
    ]
    print(format_table(("TICK", "STATUS", "RUNS", "DETAIL"), rows))
    return 0


async def _cursor(args: argparse.Namespace, kind: str, ws: Workspace, instance: Instance) -> int:
    from runtime.daemon.instigators import set_cursor

    instigator = _find(args, kind, ws)
    state: InstigatorState | None
    if args.set_cursor is not None or args.delete:
        state = await set_cursor(
            instance, instigator, None if args.delete else args.set_cursor, now=time.time()
        )
    else:
        state = await instance.get_instigator_state(instigator.id)
    cursor = state.cursor if state is not None else None
    if args.json:
        from runtime.cli.json_output import print_json

        print_json({"location": instigator.location, "name": instigator.name, "cursor": cursor})
        return 0
    if args.delete:
        print(f"{instigator.label}: cursor deleted")
    elif args.set_cursor is not None:
        print(f"{instigator.label}: cursor set to {cursor!r}")
    else:
        print(cursor if cursor is not None else f"{instigator.label} has no cursor")
    return 0


# --- rows and text --------------------------------------------------------------------


def _row(
    instigator: Instigator, state: InstigatorState | None, last: TickRecord | None
) -> dict[str, Any]:
    from runtime.daemon.instigators import chosen_by_hand, effective_status

    row: dict[str, Any] = {
        "kind": str(instigator.kind),
        "location": instigator.location,
        "name": instigator.name,
        "job": instigator.job_name,
        "description": instigator.description,
        "status": str(effective_status(instigator, state)),
        "status_source": "user" if chosen_by_hand(state) else "default",
        "default_status": instigator.default_status,
        "last_tick": _tick_row(last) if last is not None else None,
    }
    if instigator.schedule is not None:
        from runtime.daemon.cron import CronSchedule
        from runtime.errors import ConfigError

        schedule = instigator.schedule
        row["cron_schedule"] = schedule.cron_schedule
        row["execution_timezone"] = schedule.execution_timezone
        try:
            cron = CronSchedule(schedule.cron_schedule, schedule.execution_timezone)
            upcoming = cron.next_after(time.time())
        except ConfigError:
            cron, upcoming = None, None
        row["next_tick"] = upcoming
        row["next_tick_iso"] = (
            cron.describe(upcoming) if cron is not None and upcoming is not None else None
        )
    if instigator.sensor is not None:
        row["minimum_interval_seconds"] = instigator.sensor.minimum_interval_seconds
        row["cursor"] = state.cursor if state is not None else None
    return row


def _tick_row(tick: TickRecord) -> dict[str, Any]:
    return {
        "tick_id": tick.tick_id,
        "tick_time": tick.tick_time,
        "status": str(tick.status),
        "run_ids": list(tick.run_ids),
        "skip_reason": tick.skip_reason,
        "error": tick.error,
        "notes": list(tick.notes),
        "cursor": tick.cursor,
    }


def _preview_row(instigator: Instigator, tick_time: float, result: TickResult) -> dict[str, Any]:
    import msgspec

    return {
        "kind": str(instigator.kind),
        "location": instigator.location,
        "name": instigator.name,
        "tick_time": tick_time,
        "run_requests": msgspec.to_builtins(result.run_requests),
        "skip_reason": result.skip_reason,
        "cursor": result.cursor,
        "error": msgspec.to_builtins(result.error) if result.error is not None else None,
    }


def _status_text(row: dict[str, Any]) -> str:
    return f"{row['status']}" + (" (default)" if row["status_source"] == "default" else "")


def _last_tick_text(tick: dict[str, Any] | None, timezone: str | None) -> str:
    if tick is None:
        return "-"
    return f"{tick['status']} at {_when(tick['tick_time'], timezone)}"


def _detail(tick: TickRecord) -> str:
    parts = []
    if tick.error:
        parts.append(tick.error.splitlines()[0])
    if tick.skip_reason:
        parts.append(tick.skip_reason)
    parts += tick.notes
    return " | ".join(parts)


def _runs_text(run_ids: list[str]) -> str:
    if not run_ids:
        return "-"
    return run_ids[0] + (f" (+{len(run_ids) - 1} more)" if len(run_ids) > 1 else "")


def _timezone(instigator: Instigator) -> str | None:
    return instigator.schedule.execution_timezone if instigator.schedule is not None else None


def _when(timestamp: float, timezone: str | None) -> str:
    from datetime import datetime

    if timezone is not None:
        from zoneinfo import ZoneInfo

        try:
            moment = datetime.fromtimestamp(timestamp, tz=ZoneInfo(timezone))
            return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
        except (ValueError, KeyError):
            pass
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _short(value: str | None, width: int = 24) -> str:
    if value is None:
        return "-"
    return value if len(value) <= width else value[: width - 1] + "…"
