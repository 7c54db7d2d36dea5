"""`runtime workspace list` and `runtime workspace validate`: load a workspace and report on it.

Both take every target form (-w, -f, -m, --package-name, --grpc-*), start
every location as the Workspace API does, print, and stop them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.cli.common import format_table, specs_from_args
from runtime.workspace.targets import add_target_arguments

if TYPE_CHECKING:
    import argparse

    from runtime.workspace.location import CodeLocation
    from runtime.workspace.spec import LocationSpec

# Jobs the system makes (the implicit asset job) are not counted as the user's.
_IMPLICIT_JOB_PREFIX = "__"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "workspace",
        help="list or validate the code locations of a workspace",
        description="Load every code location of a workspace and report on it.",
    )
    commands = parser.add_subparsers(dest="workspace_command", metavar="COMMAND", required=True)
    list_parser = commands.add_parser(
        "list",
        help="load every location and print a table of them",
        description="Load every location and print: location, status, jobs, assets, "
        "load time and the first line of its error.",
    )
    validate_parser = commands.add_parser(
        "validate",
        help="load every location; exit status 1 if any fails",
        description="Load every location and print each error in full; "
        "the exit status is 1 when any location is in error.",
    )
    for command, handler in ((list_parser, _list), (validate_parser, _validate)):
        add_target_arguments(command)
        command.add_argument(
            "--startup-timeout",
            type=float,
            default=180.0,
            metavar="SECONDS",
            help="how long a location may take to load (default: 180)",
        )
        command.set_defaults(handler=handler)
    list_parser.add_argument(
        "--json", action="store_true", help="print JSON (one array of locations)"
    )


def _load(specs: list[LocationSpec], startup_timeout: float) -> list[CodeLocation]:
    """Start the workspace, take its locations as they are once loaded, stop it."""
    import logging

    import anyio

    from runtime.host.workspace import Workspace

    # User code's stderr reaches the terminal; its stdout stays out of the table.
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    # The supervisor's warnings repeat what the table or report already says.
    logging.getLogger("runtime.workspace").setLevel(logging.ERROR)

    async def load() -> list[CodeLocation]:
        workspace = Workspace.from_specs(specs, startup_timeout=startup_timeout, restart=False)
        async with workspace:
            return list(workspace.locations.values())

    return anyio.run(load)


def _counts(location: CodeLocation) -> tuple[str, str]:
    snapshot = location.snapshot
    if snapshot is None:
        return "-", "-"
    jobs = [job for job in snapshot.jobs if not job.name.startswith(_IMPLICIT_JOB_PREFIX)]
    return str(len(jobs)), str(len(snapshot.assets))


def _load_time(location: CodeLocation) -> str:
    if location.status != "loaded" or location.load_seconds is None:
        return "-"
    return f"{location.load_seconds:.2f} s"


def format_locations(locations: list[CodeLocation]) -> str:
    """The `workspace list` table: one row per location, columns padded to fit."""
    rows = []
    for location in locations:
        jobs, assets = _counts(location)
        error = location.error.first_line if location.error is not None else ""
        rows.append((location.name, location.status, jobs, assets, _load_time(location), error))
    return format_table(("LOCATION", "STATUS", "JOBS", "ASSETS", "LOAD TIME", "ERROR"), rows)


def _list(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if specs is None:
        return 1
    locations = _load(specs, args.startup_timeout)
    if args.json:
        from runtime.cli.json_output import location_row, print_json

        print_json([location_row(location) for location in locations])
        return 0
    print(format_locations(locations))
    return 0


def _validate(args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if specs is None:
        return 1
    locations = _load(specs, args.startup_timeout)
    failed = 0
    for location in locations:
        if location.status == "loaded" and location.error is None:
            jobs, assets = _counts(location)
            print(
                f"ok     {location.name}: {jobs} jobs, {assets} assets, "
                f"loaded in {_load_time(location)}"
            )
            continue
        failed += 1
        print(f"error  {location.name} ({location.spec.origin or 'command line'}):")
        detail = location.error.describe() if location.error is not None else location.status
        print("\n".join(f"       {line}" for line in detail.splitlines()))
    total = len(locations)
    if failed:
        print(f"{failed} of {total} locations failed to load.")
        return 1
    print(f"All {total} locations loaded.")
    return 0
