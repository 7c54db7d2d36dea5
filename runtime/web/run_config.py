"""Run config sent as YAML text (the launchpad's editor) into plain data."""

from __future__ import annotations

from typing import Any

import anyio

from runtime.errors import RunConfigError

# YAML text past this many characters is refused before parsing (the body limit is larger).
MAX_YAML_CHARS = 256 * 1024
# YAML aliases let a short text name the same list many times over: counted as
# expanded, a document may hold at most this many values.
MAX_VALUES = 100_000


async def parse_run_config(text: str) -> dict[str, Any]:
    """The mapping YAML (or JSON) `text` holds; RunConfigError naming the line of a mistake.

    Unlike a run config file on the command line, `{env: VAR}` is not resolved:
    a web client must not read the server's environment into a run.
    """
    if len(text) > MAX_YAML_CHARS:
        raise RunConfigError(
            f"The run config is {len(text)} characters; at most {MAX_YAML_CHARS} are accepted."
        )
    # ruamel is pure Python: a long document would stall the loop.
    data = await anyio.to_thread.run_sync(_load, text)
    if data is None:
        return {}
    _check_size(data)
    if not isinstance(data, dict):
        raise RunConfigError(
            f"The run config must be a mapping at its top, not {type(data).__name__}."
        )
    return data


def _load(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "it is not valid YAML"
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RunConfigError(f"The run config is not valid YAML{where}: {problem}.") from None
    except YAMLError as exc:
        raise RunConfigError(f"The run config is not valid YAML: {exc}.") from None


def _check_size(data: Any) -> None:
    count = 0
    stack = [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise RunConfigError(
                f"The run config holds more than {MAX_VALUES} values (counting YAML aliases as copies)."
            )
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
