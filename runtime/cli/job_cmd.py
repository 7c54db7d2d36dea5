"""`runtime job list | launch | execute`: the jobs of a workspace, and running them.

`launch` prints the run id at once and returns when the run has ended (the run
executes in a code server this command owns); `execute` also shows every event
as it happens and a table of the steps, and exits non-zero unless the run succeeded.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from runtime.cli.common import (
    describe_event,
    format_steps,
    format_table,
    parse_tags,
    specs_from_args,
)
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse

    from runtime.host.workspace import Workspace
    from runtime.protocol.run_result import RunResult
    from runtime.runs.handle import RunHandle
    from runtime.workspace.spec import LocationSpec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("job", help="list, launch and execute jobs")
    commands = parser.add_subparsers(dest="job_command", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="the jobs of every location")
    add_target_arguments(list_parser)
    list_parser.add_argument("--json", action="store_true", help="print JSON (one array of jobs)")
    list_parser.set_defaults(handler=_list)

    for name, handler, text in (
        ("launch", _launch, "launch a run; prints its id, returns when it ended"),
        ("execute", _execute, "launch a run and follow it live; exit 1 unless it succeeded"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        add_target_arguments(command)
        command.add_argument("-j", "--job", required=True, help="the job to run")
        command.add_argument(
            "-l", "--location", help="the location (when the job name is not unique)"
        )
        command.add_argument(
            "-c", "--config", metavar="FILE", help="run config, a YAML or JSON file"
        )
        command.add_argument(
            "--tag", action="append", default=[], metavar="KEY=VALUE", help="a run tag (repeatable)"
        )
        command.add_argument(
            "--select", action="append", metavar="STEP", help="run only these steps (repeatable)"
        )
        command.add_argument(
            "--startup-timeout",
            type=_positive_seconds,
            default=180.0,
            metavar="SECONDS",
            help="how long the job's location may take to load (default 180); "
            "the other locations are not waited for",
        )
        command.set_defaults(handler=handler)


def _positive_seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"it must be a positive number of seconds, not {text}")
    return value


def _list(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if specs is None:
        return 1
    import anyio

    async def collect() -> list[tuple[str, str, str, str]]:
        from runtime.host.workspace import Workspace

        rows: list[tuple[str, str, str, str]] = []
        async with Workspace.from_specs(specs, restart=False) as ws:
            if args.json:
                from runtime.cli.json_output import job_rows, print_json

                print_json([row for loc in ws.locations.values() for row in job_rows(loc)])
                return []
            for location in ws.locations.values():
                if location.snapshot is None:
                    first = location.error.first_line if location.error is not None else ""
                    rows.append((location.name, "-", "-", f"error: {first}"))
                    continue
                for job in location.snapshot.jobs:
                    rows.append(
                        (location.name, job.name, str(len(job.steps)), job.description or "")
                    )
        return rows

    rows = anyio.run(collect)
    if not args.json:
        print(format_table(("LOCATION", "JOB", "STEPS", "DESCRIPTION"), rows))
    return 0


def _run_config(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return {}
    from pathlib import Path

    from runtime.config_file import read_yaml_document
    from runtime.errors import RunConfigError

    file = Path(path)
    if not file.is_file():
        print(f"error: run config file {file} does not exist.", file=sys.stderr)
        return None
    try:
        data = read_yaml_document(file, error=RunConfigError).data
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        print(f"error: run config file {file} must hold a mapping at its top.", file=sys.stderr)
        return None
    return data


def _launch(args: argparse.Namespace) -> int:
    return _start(args, follow=False)


def _execute(args: argparse.Namespace) -> int:
    return _start(args, follow=True)


def _start(args: argparse.Namespace, *, follow: bool) -> int:
    specs = specs_from_args(args)
    config = _run_config(args.config)
    tags = parse_tags(args.tag)
    if specs is None or config is None or tags is None:
        return 1
    import anyio

    return anyio.run(_run_job, specs, args, config, tags, follow)


async def _run_job(
    specs: list[LocationSpec],
    args: argparse.Namespace,
    config: dict[str, Any],
    tags: dict[str, str],
    follow: bool,
) -> int:
    from runtime.errors import RuntimeFrameworkError
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance

    # Entered without waiting for every location: the launch waits for its own
    # only, so a location that hangs while importing holds up only its own jobs.
    async with (
        Instance.from_home() as instance,
        Workspace.from_specs(
            specs,
            instance=instance,
            restart=False,
            startup_timeout=args.startup_timeout,
            wait_for_load=False,
        ) as ws,
    ):
        try:
            run = await ws.launch_run(
                job=args.job,
                location=args.location,
                run_config=config,
                tags=tags,
                step_selection=args.select,
            )
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(run.run_id, flush=True)
        if follow:
            result = await _follow(ws, run)
        else:
            result = await run.wait()
        return 0 if result.success else 1


async def _follow(ws: Workspace, run: RunHandle) -> RunResult:
    async for event in run.events():
        print(describe_event(event), flush=True)
    result = await run.wait()
    print()
    print(format_steps(result))
    took = f" in {result.duration:.3f} s" if result.duration is not None else ""
    print(f"\nrun {run.run_id} {result.status}{took}")
    return result
