"""`runtime run list | show | logs | cancel`: the runs stored in the instance (RUNTIME_HOME)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from runtime.cli.common import describe_event, format_steps, format_table

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from runtime.instance.instance import Instance


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="read stored runs and their events")
    commands = parser.add_subparsers(dest="run_command", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="the newest runs")
    list_parser.add_argument("--job", help="only runs of this job")
    list_parser.add_argument(
        "--status", action="append", help="only runs in this status (repeatable)"
    )
    list_parser.add_argument("--location", help="only runs of this location")
    list_parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag"
    )
    list_parser.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    list_parser.add_argument("--json", action="store_true", help="print JSON (one array of runs)")
    list_parser.set_defaults(handler=_list)

    show_parser = commands.add_parser("show", help="one run: its record and its steps")
    show_parser.add_argument("run_id")
    show_parser.add_argument("--json", action="store_true", help="print JSON")
    show_parser.set_defaults(handler=_show)

    cancel_parser = commands.add_parser(
        "cancel",
        help="ask a run to stop, wherever it runs",
        description="Record a cancel request in the instance; the host driving the run stops "
        "it within a second and it ends CANCELED.",
    )
    cancel_parser.add_argument("run_id")
    cancel_parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for the run to end, and print how it ended",
    )
    cancel_parser.set_defaults(handler=_cancel)

    logs_parser = commands.add_parser("logs", help="the events of a run")
    logs_parser.add_argument("run_id")
    logs_parser.add_argument(
        "--follow", "-F", action="store_true", help="keep following until the run ends"
    )
    logs_parser.set_defaults(handler=_logs)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _with_instance(body: Callable[[Instance], Awaitable[int]]) -> int:
    import anyio

    from runtime.errors import RuntimeFrameworkError
    from runtime.instance.instance import Instance

    async def main() -> int:
        try:
            async with Instance.from_home() as instance:
                return await body(instance)
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return anyio.run(main)


def _list(args: argparse.Namespace) -> int:
    from runtime.cli.common import parse_tags
    from runtime.instance.records import RunFilter, RunStatus

    tags = parse_tags(args.tag)
    if tags is None:
        return 1

    try:
        statuses = [RunStatus(s.upper()) for s in args.status] if args.status else None
    except ValueError:
        print(
            f"error: unknown status in {args.status}; use {', '.join(RunStatus)}.", file=sys.stderr
        )
        return 1

    async def body(instance: Instance) -> int:
        runs = await instance.storage.get_runs(
            RunFilter(job_name=args.job, location_name=args.location, statuses=statuses, tags=tags),
            limit=args.limit,
        )
        if args.json:
            from runtime.cli.json_output import print_json, run_row

            print_json([run_row(r) for r in runs])
            return 0
        rows = [
            (
                r.run_id,
                r.job_name,
                r.location_name or "-",
                str(r.status),
                _when(r.created_at),
                f"{r.ended_at - r.started_at:.3f} s" if r.ended_at and r.started_at else "-",
            )
            for r in runs
        ]
        print(format_table(("RUN", "JOB", "LOCATION", "STATUS", "CREATED", "DURATION"), rows))
        return 0

    return _with_instance(body)


def _show(args: argparse.Namespace) -> int:
    async def body(instance: Instance) -> int:
        from runtime.protocol.run_result import fold_events

        record = await instance.storage.get_run(args.run_id)
        if record is None:
            print(f"error: no run {args.run_id} in {instance.home}.", file=sys.stderr)
            return 1
        events = await instance.storage.get_events(record.run_id)
        result = fold_events(record.run_id, events, status=str(record.status))
        if args.json:
            from runtime.cli.json_output import print_json, run_details

            print_json(run_details(record, result))
            return 0
        print(f"run       {record.run_id}")
        print(f"job       {record.job_name} (location {record.location_name or '-'})")
        print(f"status    {record.status}")
        print(f"created   {_when(record.created_at)}")
        print(f"started   {_when(record.started_at)}")
        print(f"ended     {_when(record.ended_at)}")
        if record.parent_run_id:
            print(f"parent    {record.parent_run_id}")
        if record.tags:
            print("tags      " + ", ".join(f"{k}={v}" for k, v in sorted(record.tags.items())))
        if record.failure_reason:
            print(f"failure   {record.failure_reason}")
        print(f"events    {len(events)}\n")
        print(format_steps(result))
        return 0

    return _with_instance(body)


def _logs(args: argparse.Namespace) -> int:
    async def body(instance: Instance) -> int:
        from runtime.runs.handle import RunHandle

        record = await instance.storage.get_run(args.run_id)
        if record is None:
            print(f"error: no run {args.run_id} in {instance.home}.", file=sys.stderr)
            return 1
        if args.follow:
            async for event in RunHandle(instance, record).events():
                print(describe_event(event), flush=True)
        else:
            for event in await instance.storage.get_events(record.run_id):
                print(describe_event(event))
        return 0

    return _with_instance(body)


def _cancel(args: argparse.Namespace) -> int:
    async def body(instance: Instance) -> int:
        import anyio

        record = await instance.request_cancel(args.run_id)
        if record.is_finished:
            print(f"run {record.run_id} already ended {record.status}; nothing to cancel.")
            return 0
        print(f"cancel requested for run {record.run_id} ({record.status})", flush=True)
        if args.wait <= 0:
            return 0
        with anyio.move_on_after(args.wait):
            while not record.is_finished:
                await anyio.sleep(0.1)
                fresh = await instance.storage.get_run(record.run_id)
                if fresh is not None:
                    record = fresh
        if not record.is_finished:
            print(
                f"error: run {record.run_id} is still {record.status} after {args.wait:g} s.",
                file=sys.stderr,
            )
            return 1
        print(f"run {record.run_id} {record.status}")
        return 0 if record.status == "CANCELED" else 1

    return _with_instance(body)
