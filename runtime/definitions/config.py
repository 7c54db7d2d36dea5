"""Run config: validate `{"ops": {"<step>": {"config": {...}}}}` against each step's config struct."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from runtime.errors import RunConfigError

if TYPE_CHECKING:
    from runtime.definitions.graph import JobDefinition

# msgspec reports where a value is wrong as "... - at `$.a.b`".
_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def resolve_run_config(
    job: JobDefinition, run_config: Mapping[str, Any]
) -> dict[str, msgspec.Struct]:
    """Map each step of `job` that takes `config` to its validated config struct.

    Steps whose struct has only defaults need no entry. Raises RunConfigError
    naming the job, the step and the `$.ops.<step>.config.<field>` path of a bad
    value, for a step the job does not have or that takes no config, and for a
    step whose struct has required fields but got no config.
    """
    where = f"Run config for job {job.name!r}"
    if not isinstance(run_config, Mapping):
        raise RunConfigError(f"{where} must be a mapping, got {type(run_config).__name__}.")
    # `execution` chooses the run's executor; the engine reads it (runtime.execution.executors).
    unknown = [key for key in run_config if key not in ("ops", "execution")]
    if unknown:
        raise RunConfigError(
            f"{where} has the key {unknown[0]!r} at `$`; the keys are 'ops' and 'execution'."
        )
    ops = run_config.get("ops")
    if ops is None:
        ops = {}
    if not isinstance(ops, Mapping):
        raise RunConfigError(f"{where}: `$.ops` must be a mapping, got {type(ops).__name__}.")

    configurable = [key for key, node in job.steps.items() if node.op.config_type is not None]
    for step_key in ops:
        node = job.steps.get(step_key)
        if node is None or node.op.config_type is None:
            what = "has no step" if node is None else "has a step that takes no config,"
            raise RunConfigError(
                f"{where} {what} {step_key!r} at `$.ops.{step_key}`; the steps that take "
                f"config are: {', '.join(configurable) or 'none'}."
            )

    resolved: dict[str, msgspec.Struct] = {}
    for step_key in configurable:
        config_type = job.steps[step_key].op.config_type
        assert config_type is not None
        entry = ops.get(step_key)
        path = f"$.ops.{step_key}"
        if entry is None:
            raw: object = {}
        elif not isinstance(entry, Mapping):
            raise RunConfigError(
                f"{where}, step {step_key!r}: `{path}` must be a mapping with the key 'config'."
            )
        else:
            extra = [key for key in entry if key != "config"]
            if extra:
                raise RunConfigError(
                    f"{where}, step {step_key!r}: unexpected key {extra[0]!r} at `{path}`; "
                    "the only key is 'config'."
                )
            raw = entry.get("config", {})
        try:
            resolved[step_key] = msgspec.convert(raw, config_type)
        except msgspec.ValidationError as exc:
            if entry is None:
                raise RunConfigError(
                    f"{where}: step {step_key!r} needs config ({exc}) and none was given "
                    f"at `{path}.config`."
                ) from exc
            raise RunConfigError(_validation_message(where, step_key, path, exc)) from exc
    return resolved


def _validation_message(where: str, step_key: str, path: str, exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = _AT_PATH.search(text)
    inner = match.group("path") if match else ""
    reason = text[: match.start()] if match else text
    return f"{where}, step {step_key!r}: {reason} at `{path}.config{inner}`."


@functools.cache
def config_json_schema(struct_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of a config struct, for snapshots; computed once per type."""
    return msgspec.json.schema(struct_type)
