"""Run config validation against each step's config struct, with paths in errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from runtime import job, op
from runtime.definitions.config import config_json_schema, resolve_run_config
from runtime.errors import RunConfigError


class Window(msgspec.Struct):
    start: int
    end: int


class ExtractConfig(msgspec.Struct):
    table: str
    window: Window
    limit: int = 100


class LoadConfig(msgspec.Struct):
    mode: str = "append"


@op
def extract(config: ExtractConfig) -> int:
    return config.limit


@op
def load(n: int, config: LoadConfig) -> None:
    return None


@op
def plain(n: int) -> int:
    return n


@job
def etl() -> None:
    n = extract()
    load(plain(n))
    load(n)


def _ops(**steps: Any) -> dict[str, Any]:
    return {"ops": {key: {"config": value} for key, value in steps.items()}}


def test_valid_config_is_converted_per_step() -> None:
    resolved = resolve_run_config(
        etl, _ops(extract={"table": "t", "window": {"start": 1, "end": 2}}, load_2={"mode": "x"})
    )
    assert resolved == {
        "extract": ExtractConfig(table="t", window=Window(1, 2)),
        "load": LoadConfig(),
        "load_2": LoadConfig(mode="x"),
    }


def test_bad_value_names_job_step_and_path() -> None:
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, _ops(extract={"table": "t", "window": {"start": 1, "end": "z"}}))
    message = str(info.value)
    assert "job 'etl'" in message and "step 'extract'" in message
    assert "`$.ops.extract.config.window.end`" in message
    assert "Expected `int`, got `str`" in message


def test_missing_required_field_names_path() -> None:
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, _ops(extract={"window": {"start": 1, "end": 2}}))
    message = str(info.value)
    assert "missing required field `table`" in message
    assert "`$.ops.extract.config`" in message


def test_unknown_step_lists_steps_that_take_config() -> None:
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, _ops(extrakt={}))
    message = str(info.value)
    assert "'extrakt'" in message and "`$.ops.extrakt`" in message
    assert "extract, load, load_2" in message


def test_step_without_config_rejects_config() -> None:
    with pytest.raises(RunConfigError, match="takes no config, 'plain'"):
        resolve_run_config(etl, _ops(plain={}))


def test_required_config_missing_is_an_error() -> None:
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, {})
    message = str(info.value)
    assert "step 'extract' needs config" in message and "none was given" in message


@pytest.mark.parametrize(
    ("run_config", "message"),
    [
        ({"resources": {}}, "has the key 'resources' at `\\$`"),
        ({"ops": []}, "`\\$.ops` must be a mapping"),
        ({"ops": {"extract": 3}}, "`\\$.ops.extract` must be a mapping"),
        ({"ops": {"extract": {"cfg": {}}}}, "unexpected key 'cfg' at `\\$.ops.extract`"),
    ],
)
def test_bad_shapes(run_config: dict[str, Any], message: str) -> None:
    with pytest.raises(RunConfigError, match=message):
        resolve_run_config(etl, run_config)


def test_json_schema_is_cached() -> None:
    schema = config_json_schema(ExtractConfig)
    assert schema is config_json_schema(ExtractConfig)
    assert schema["$defs"]["ExtractConfig"]["required"] == ["table", "window"]
