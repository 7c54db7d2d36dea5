"""`runtime instance info | migrate`: where the instance (RUNTIME_HOME) lives, its storage and
schema, its runs; bring the storage's schema up to date."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from runtime.instance.instance import Instance


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("instance", help="the instance in RUNTIME_HOME")
    commands = parser.add_subparsers(dest="instance_command", metavar="COMMAND", required=True)
    info = commands.add_parser(
        "info", help="where it lives, its storage and schema version, its queued and running runs"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_info)
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the storage's schema (what opening it does), and say what changed",
    )
    migrate.add_argument("--json", action="store_true", help="print one JSON object")
    migrate.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    import anyio

    from runtime.errors import RuntimeFrameworkError
    from runtime.instance.instance import Instance

    async def main() -> int:
        try:
            facts = await _migrate_storage(Instance.from_home())
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(facts, indent=2))
        elif facts["applied"]:
            applied = ", ".join(str(version) for version in facts["applied"])
            print(
                f"{facts['description']}: migrated to schema version {facts['schema_version']} "
                f"(applied {applied})."
            )
        else:
            print(f"{facts['description']}: already at schema version {facts['schema_version']}.")
        return 0

    return anyio.run(main)


async def _migrate_storage(instance: Instance) -> dict[str, Any]:
    """Open the instance's storage alone (no orphan sweep, no event writer): opening migrates."""
    import anyio

    from runtime.errors import InstanceConfigError
    from runtime.instance.home import create_home
    from runtime.instance.storage.registry import StorageRegistry

    chosen = instance.config.storage
    registry = StorageRegistry()
    kind = registry.get(chosen.kind)
    if kind is None:
        raise InstanceConfigError(
            f"The instance at {instance.home} chooses a storage that is not available: "
            f"{registry.explain_unknown(chosen.kind)}"
        )
    await anyio.to_thread.run_sync(create_home, instance.home)
    async with kind.open(instance.home, chosen.options) as storage:
        # Backends say what they applied; one that does not is reported as up to date.
        applied: list[int] = list(getattr(storage, "applied_migrations", []))
        return {
            "home": str(instance.home),
            "storage": chosen.kind,
            "description": storage.describe(),
            "schema_version": storage.schema_version,
            "applied": applied,
        }


def _info(args: argparse.Namespace) -> int:
    import anyio

    from runtime.errors import RuntimeFrameworkError
    from runtime.instance.instance import Instance

    async def main() -> int:
        try:
            instance = Instance.from_home()
            facts = await _facts(instance)
        except RuntimeFrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(facts, indent=2))
        else:
            width = max(len(key) for key in facts)
            for key, value in facts.items():
                print(f"{key.replace('_', ' '):<{width}}  {_shown(value)}")
        return 0

    return anyio.run(main)


async def _facts(instance: Instance) -> dict[str, Any]:
    """What `info` prints. An instance whose home does not exist yet is not created."""
    from runtime.instance.records import IN_FLIGHT_STATUSES, RunFilter, RunStatus

    facts: dict[str, Any] = {
        "home": str(instance.home),
        "storage": instance.config.storage.kind,
        "run_coordinator": instance.config.run_coordinator.kind,
        "run_launcher": instance.config.run_launcher.kind,
    }
    if not instance.home.is_dir():
        facts["state"] = "not created yet (it is created when the first run is launched)"
        return facts
    async with instance:
        storage = instance.storage
        facts["state"] = "ready"
        facts["description"] = storage.describe()
        facts["schema_version"] = storage.schema_version
        facts["runs"] = {
            "total": await storage.count_runs(),
            "queued": await storage.count_runs(
                RunFilter(statuses=[RunStatus.NOT_STARTED], queued=True)
            ),
            "in_flight": await storage.count_runs(RunFilter(statuses=sorted(IN_FLIGHT_STATUSES))),
        }
        if instance.orphaned_run_ids:
            facts["failed_on_open"] = instance.orphaned_run_ids
    return facts


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')} {item}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
