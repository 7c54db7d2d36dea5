"""Run config: validate `{"ops": {"<step>": {"config": {...}}}}` against each step's config struct."""

from __future__ import annotations

import difflib
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
    value or of a field the struct does not have (with the closest field), for
    an unknown key at the top or in a step's entry, for a step the job does not
    have or that takes no config (with the closest step), and for a step whose
    struct has required fields but got no config.
    """
    where = f"Run config for job {job.name!r}"
    if not isinstance(run_config, Mapping):
        raise RunConfigError(f"{where} must be a mapping, got {type(run_config).__name__}.")
    # `execution` chooses the run's executor; the engine reads it (runtime.execution.executors).
    unknown = [key for key in run_config if key not in ("ops", "execution")]
    if unknown:
        raise RunConfigError(
            f"{where} has the key {unknown[0]!r} at `$`"
            f"{_did_you_mean(unknown[0], ['ops', 'execution'])}; the keys are 'ops' and "
            "'execution'."
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
            hint = _did_you_mean(step_key, configurable)
            raise RunConfigError(
                f"{where} {what} {step_key!r} at `$.ops.{step_key}`{hint}; the steps that take "
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
                    f"{where}, step {step_key!r}: unexpected key {extra[0]!r} at `{path}`"
                    f"{_did_you_mean(extra[0], ['config'])}; the only key is 'config'."
                )
            raw = entry.get("config", {})
            # A user's Struct ignores fields it does not declare unless it says
            # otherwise; a misspelt field would silently run with the default.
            stray = unknown_field(raw, config_type)
            if stray is not None:
                inner, name, known = stray
                raise RunConfigError(
                    f"{where}, step {step_key!r}: unknown field {name!r} at "
                    f"`{path}.config{inner}.{name}`{_did_you_mean(name, known)}; "
                    f"the fields there are: {', '.join(known) or 'none'}."
                )
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


def unknown_field(value: object, schema: Any) -> tuple[str, str, list[str]] | None:
    """The first key of `value` that `schema` has no field for, wherever structs nest.

    Returns (path inside `value` of the mapping holding it, e.g. ``.window``, the
    key, the fields known there), or None when every key is known. Values of
    the wrong shape are left to msgspec.convert to report.
    """
    from msgspec import inspect

    return _unknown_in(value, inspect.type_info(schema), "")


def _unknown_in(value: object, info: Any, at: str) -> tuple[str, str, list[str]] | None:
    from msgspec import inspect

    while isinstance(info, inspect.Metadata):
        info = info.type
    if isinstance(info, inspect.UnionType):
        if isinstance(value, Mapping):
            # A tagged union: the member its tag names is the one to check.
            for member in info.types:
                tag_field = getattr(member, "tag_field", None)
                if tag_field is not None and value.get(tag_field) == getattr(member, "tag", None):
                    return _unknown_in(value, member, at)
        # Unknown only if no member of the value's shape takes every key.
        findings = [
            _unknown_in(value, member, at) for member in info.types if _same_shape(value, member)
        ]
        if findings and all(found is not None for found in findings):
            return findings[0]
        return None
    if isinstance(info, inspect.StructType | inspect.DataclassType) and isinstance(value, Mapping):
        fields = {field.encode_name: field for field in info.fields}
        tag_field = getattr(info, "tag_field", None)  # a tagged union's "type" key
        for key in value:
            if key not in fields and key != tag_field:
                return at, str(key), list(fields)
        for key, item in value.items():
            if key == tag_field:
                continue
            found = _unknown_in(item, fields[key].type, f"{at}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(info, inspect.ListType | inspect.SetType | inspect.VarTupleType) and isinstance(
        value, list
    ):
        for index, item in enumerate(value):
            found = _unknown_in(item, info.item_type, f"{at}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(info, inspect.DictType) and isinstance(value, Mapping):
        for key, item in value.items():
            found = _unknown_in(item, info.value_type, f"{at}.{key}")
            if found is not None:
                return found
    return None


def _same_shape(value: object, info: Any) -> bool:
    from msgspec import inspect

    while isinstance(info, inspect.Metadata):
        info = info.type
    if isinstance(value, Mapping):
        return isinstance(
            info,
            inspect.StructType | inspect.DataclassType | inspect.DictType | inspect.TypedDictType,
        )
    if isinstance(value, list):
        return isinstance(info, inspect.ListType | inspect.SetType | inspect.VarTupleType)
    return False


def _did_you_mean(name: object, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
