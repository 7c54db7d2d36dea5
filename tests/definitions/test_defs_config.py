"""Run config validation against each step's config struct, with paths in errors."""

from __future__ import annotations

import re
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


def test_execution_is_a_key_of_run_config_the_engine_reads() -> None:
    config = {
        "execution": {"dask": {}},
        **_ops(extract={"table": "t", "window": {"start": 1, "end": 2}}),
    }
    assert "extract" in resolve_run_config(etl, config)
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, {"executon": {}})
    assert "did you mean 'execution'" in str(info.value)
    assert str(info.value).endswith("the keys are 'ops' and 'execution'.")


def test_json_schema_is_cached() -> None:
    schema = config_json_schema(ExtractConfig)
    assert schema is config_json_schema(ExtractConfig)
    assert schema["$defs"]["ExtractConfig"]["required"] == ["table", "window"]


EXTRACT = {"table": "t", "window": {"start": 1, "end": 2}}


class Tagged(msgspec.Struct, frozen=True, tag="a"):
    x: int = 0


class Other(msgspec.Struct, frozen=True, tag="b"):
    y: int = 0


class NestedConfig(msgspec.Struct):
    windows: list[Window] = []
    by_name: dict[str, Window] = {}
    maybe: Window | None = None
    either: Tagged | Other = Tagged()


@op
def nested(config: NestedConfig) -> int:
    return len(config.windows)


@job
def nested_job() -> None:
    nested()


def test_an_unknown_field_is_refused_with_the_closest_one() -> None:
    with pytest.raises(RunConfigError) as info:
        resolve_run_config(etl, _ops(extract=EXTRACT, load={"mdoe": "x"}))
    assert str(info.value) == (
        "Run config for job 'etl', step 'load': unknown field 'mdoe' at "
        "`$.ops.load.config.mdoe` (did you mean 'mode'?); the fields there are: mode."
    )
    with pytest.raises(RunConfigError, match=r"`\$\.ops\.extract\.config\.window\.ends` "):
        resolve_run_config(
            etl, _ops(extract={"table": "t", "window": {"start": 1, "end": 2, "ends": 3}})
        )


@pytest.mark.parametrize(
    ("config", "path"),
    [
        (
            {"windows": [{"start": 1, "end": 2}, {"start": 1, "end": 2, "stop": 3}]},
            "windows[1].stop",
        ),
        ({"by_name": {"a": {"start": 1, "end": 2, "stop": 3}}}, "by_name.a.stop"),
        ({"maybe": {"start": 1, "end": 2, "stop": 3}}, "maybe.stop"),
        ({"either": {"type": "b", "y": 1, "z": 2}}, "either.z"),
    ],
)
def test_unknown_fields_are_found_wherever_structs_nest(config: dict[str, Any], path: str) -> None:
    with pytest.raises(RunConfigError, match=rf"`\$\.ops\.nested\.config\.{re.escape(path)}`"):
        resolve_run_config(nested_job, _ops(nested=config))


def test_known_fields_anywhere_pass() -> None:
    resolved = resolve_run_config(
        nested_job,
        _ops(
            nested={
                "windows": [{"start": 1, "end": 2}],
                "by_name": {"a": {"start": 1, "end": 2}},
                "maybe": None,
                "either": {"type": "b", "y": 1},
            }
        ),
    )
    assert resolved["nested"] == NestedConfig(
        windows=[Window(1, 2)], by_name={"a": Window(1, 2)}, either=Other(y=1)
    )


def test_unknown_keys_and_steps_suggest_the_closest() -> None:
    with pytest.raises(RunConfigError, match=r"key 'opss' at `\$` \(did you mean 'ops'\?\)"):
        resolve_run_config(etl, {"opss": {}})
    with pytest.raises(RunConfigError, match=r"`\$\.ops\.extrakt` \(did you mean 'extract'\?\)"):
        resolve_run_config(etl, _ops(extrakt={}))
    with pytest.raises(RunConfigError, match=r"`\$\.ops\.load` \(did you mean 'config'\?\)"):
        resolve_run_config(etl, {"ops": {"extract": {"config": EXTRACT}, "load": {"confg": {}}}})
