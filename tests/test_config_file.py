"""runtime.config_file: YAML with positions into frozen Structs, errors naming file, line, column, path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
import pytest

from runtime.config_file import (
    YamlDocument,
    format_config_path,
    load_yaml_config,
    read_yaml_document,
)
from runtime.errors import ConfigError, InstanceConfigError

if TYPE_CHECKING:
    from pathlib import Path


class Storage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(min_length=1)]
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0


class Limit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key: str
    limit: Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    storage: Storage
    limits: list[Limit] = []
    debug: bool = False
    labels: dict[str, int] = {}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InstanceConfigError) as caught:
        load_yaml_config(path, Settings, error=InstanceConfigError)
    message = str(caught.value)
    assert message.startswith(f"{path}, line ") or message.startswith(str(path))
    return message


def test_valid_file_converts_into_frozen_struct(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage:\n  path: runs.db\n  timeout: 2\nlimits:\n  - {key: team, limit: 3}\ndebug: true\n",
    )
    settings = load_yaml_config(path, Settings, error=InstanceConfigError)
    assert settings == Settings(
        storage=Storage(path="runs.db", timeout=2.0),
        limits=[Limit(key="team", limit=3)],
        debug=True,
    )
    with pytest.raises(AttributeError):
        settings.debug = False  # type: ignore[misc]


def test_ruamel_scalar_subclasses_become_builtins(tmp_path: Path) -> None:
    document = YamlDocument.parse(
        "a: 0x10\nb: 1_000\nc: 1.5e3\nd: &flag yes\ne: *flag\nf: 'quoted'\n",
        source="x.yaml",
        error=ConfigError,
    )
    assert document.data == {"a": 16, "b": 1000, "c": 1500.0, "d": "yes", "e": "yes", "f": "quoted"}
    assert [type(v) for v in document.data.values()] == [int, int, float, str, str, str]
    flags = YamlDocument.parse("a: &t true\nb: *t\n", source="x.yaml", error=ConfigError)
    assert flags.data == {"a": True, "b": True}
    assert all(type(v) is bool for v in flags.data.values())


def test_unknown_key_names_line_column_and_suggests_closest(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage:\n  path: runs.db\n  timeuot: 3\n")
    assert message == (
        f"{tmp_path / 'settings.yaml'}, line 3, column 3: unknown key `timeuot` in "
        "`$.storage`; did you mean `timeout`?"
    )


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage: {path: x}\nzzz: 1\n")
    assert "line 2, column 1: unknown key `zzz` in `$`" in message
    assert "the known keys are `storage`, `limits`, `debug`, `labels`" in message


def test_unknown_key_inside_list_item(tmp_path: Path) -> None:
    text = "storage: {path: x}\nlimits:\n  - key: a\n    limit: 1\n  - key: b\n    limt: 2\n"
    message = load_error(tmp_path, text)
    assert "line 6, column 5: unknown key `limt` in `$.limits[1]`; did you mean `limit`?" in message


def test_missing_required_key_points_at_the_mapping(tmp_path: Path) -> None:
    message = load_error(tmp_path, "debug: true\nstorage:\n  timeout: 1\n")
    assert "line 3, column 3: `$.storage` is missing the required key `path`." in message


def test_wrong_type_names_path_and_types(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage:\n  path: [a, b]\n")
    assert message.endswith(
        "line 2, column 9: invalid value at `$.storage.path`: expected a string, got a list."
    )


def test_constraint_violation_in_list(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage: {path: x}\nlimits:\n  - key: a\n    limit: 0\n")
    assert "line 4, column 12: invalid value at `$.limits[0].limit`: expected an integer >= 1" in (
        message
    )


def test_dict_value_error_points_at_the_mapping(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage: {path: x}\nlabels:\n  a: 1\n  b: nope\n")
    assert "invalid value at `$.labels[...]`: expected an integer, got a string" in message
    assert "line 3, column 3" in message


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage:\n  path: x\nlimits: [1, 2\n")
    assert "line 4, column 1: the file is not valid YAML:" in message
    assert "expected ',' or ']'" in message


def test_duplicate_key_is_a_yaml_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, "storage: {path: x}\ndebug: true\ndebug: false\n")
    assert "line 3, column 1: the file is not valid YAML: found duplicate key" in message


def test_empty_file_and_wrong_root(tmp_path: Path) -> None:
    assert load_error(tmp_path, "# nothing\n").endswith(
        "is empty; it should hold a mapping of settings."
    )
    message = load_error(tmp_path, "- storage\n")
    assert "line 1, column 1: invalid value at `$`: expected a mapping, got a list." in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InstanceConfigError, match=r"Config file .*nope\.yaml does not exist\."):
        read_yaml_document(tmp_path / "nope.yaml", error=InstanceConfigError)


def test_env_values_are_resolved_and_coerced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONFIG_DB", "/data/runs.db")
    monkeypatch.setenv("TEST_CONFIG_LIMIT", "7")
    monkeypatch.setenv("TEST_CONFIG_DEBUG", "true")
    path = write(
        tmp_path,
        "storage:\n  path: {env: TEST_CONFIG_DB}\n"
        "limits:\n  - key: x\n    limit: {env: TEST_CONFIG_LIMIT}\n"
        "debug: {env: TEST_CONFIG_DEBUG}\n",
    )
    settings = load_yaml_config(path, Settings, error=InstanceConfigError)
    assert settings.storage.path == "/data/runs.db"
    assert settings.limits[0].limit == 7
    assert settings.debug is True


def test_unset_env_variable_names_variable_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_CONFIG_UNSET", raising=False)
    message = load_error(tmp_path, "storage:\n  path: {env: TEST_CONFIG_UNSET}\n")
    assert message == (
        f"{tmp_path / 'settings.yaml'}, line 2, column 9: `$.storage.path` reads the "
        "environment variable `TEST_CONFIG_UNSET`, which is not set."
    )


def test_env_value_that_does_not_fit_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CONFIG_LIMIT", "many")
    message = load_error(
        tmp_path, "storage: {path: x}\nlimits:\n  - key: x\n    limit: {env: TEST_CONFIG_LIMIT}\n"
    )
    assert "line 4, column 12: invalid value at `$.limits[0].limit`: expected an integer" in message


def test_convert_a_subtree_keeps_document_paths() -> None:
    document = YamlDocument.parse(
        "run_storage:\n  module: sqlite\n  config:\n    path: x\n    timeuot: 1\n",
        source="instance.yaml",
        error=InstanceConfigError,
    )
    with pytest.raises(InstanceConfigError) as caught:
        document.convert(Storage, error=InstanceConfigError, at=("run_storage", "config"))
    assert str(caught.value) == (
        "instance.yaml, line 5, column 5: unknown key `timeuot` in "
        "`$.run_storage.config`; did you mean `timeout`?"
    )
    good = YamlDocument.parse(
        "run_storage:\n  config:\n    path: x\n", source="instance.yaml", error=InstanceConfigError
    )
    storage = good.convert(Storage, error=InstanceConfigError, at=("run_storage", "config"))
    assert storage == Storage(path="x")


def test_positions_and_custom_errors() -> None:
    document = YamlDocument.parse(
        "a:\n  - x: 1\n    y: 2\n  - plain\n", source="f.yaml", error=ConfigError
    )
    assert document.position(()) == (1, 1)
    assert document.position(("a",)) == (2, 3)
    assert document.position(("a", 0, "y")) == (3, 8)
    assert document.position(("a", 0, "y"), key=True) == (3, 5)
    assert document.position(("a", 1)) == (4, 5)
    # Paths that leave the tree stop at the deepest node that exists.
    assert document.position(("a", 1, "nothing")) == (4, 5)
    assert document.position(("a", 7)) == (2, 3)
    assert document.line_of(("a", 0)) == 2
    error = document.error(ConfigError, ("a", 0, "y"), "`y` must be odd.")
    assert isinstance(error, ConfigError)
    assert str(error) == "f.yaml, line 3, column 8: `y` must be odd."


def test_format_config_path() -> None:
    assert format_config_path(()) == "$"
    assert format_config_path(("load_from", 2, "python_file")) == "$.load_from[2].python_file"
    assert format_config_path(("modules", 1), root="tool.runtime") == "tool.runtime.modules[1]"
