"""YAML configuration files: parse with positions, validate into frozen Structs.

ruamel.yaml's round-trip loader remembers where every key and value sits, and
msgspec.convert checks the data against a schema (a frozen Struct declared with
``forbid_unknown_fields=True``). When msgspec rejects a value, its error path
(``$.load_from[2].python_file.relative_path``) is walked back through the
ruamel tree to find the line and column, so every message names the file, the
position, the ``$.path`` of the bad value and what is wrong with it.

A mapping whose only key is ``env`` (``port: {env: GRPC_PORT}``) is replaced by
that environment variable's value before validation; because environment values
are strings, conversion is lax about strings: ``"50051"`` is accepted where the
schema asks for an int.

Hostile or mistaken files stay cheap: a file over MAX_CONFIG_BYTES is refused
before it is parsed, a document whose YAML aliases (``*name``) expand to more
than MAX_CONFIG_VALUES values is refused as it expands, and a large file is
first checked on its opening part, so a mistake at line 3 of a big file is
reported without parsing the rest (ruamel.yaml parses some 100 KB a second).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.errors import ConfigError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_VALUES",
    "ConfigPath",
    "YamlDocument",
    "explain_validation_error",
    "format_config_path",
    "load_yaml_config",
    "read_yaml_document",
]

T = TypeVar("T")

# A config file bigger than this is refused unread: no one writes one by hand,
# and parsing it would take minutes.
MAX_CONFIG_BYTES = 1024 * 1024
# Values a document may expand to; only YAML aliases get a small file past it.
MAX_CONFIG_VALUES = 1_000_000
# A file larger than this is first checked on its opening part of about this size.
_PREFIX_BYTES = 16 * 1024

# A position inside a document: mapping keys and sequence indexes from the root.
ConfigPath = tuple[str | int, ...]

# msgspec writes the path of a dict value whose key it does not report as `[...]`.
_ANY_KEY = "[...]"
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_ERROR_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<key>[^`]*)`$")
_EXPECTED_GOT = re.compile(r"^Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`$")
_EXPECTED_CONSTRAINED = re.compile(r"^Expected `(?P<expected>[^`]*)`(?P<rest>.*)$", re.DOTALL)
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing (null)",
}


def format_config_path(at: Sequence[str | int], *, root: str = "$") -> str:
    """Render a path the way msgspec does: ``$.load_from[0].python_file``."""
    parts = [root]
    for step in at:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(step if step == _ANY_KEY else f".{step}")
    return "".join(parts)


def _parse_config_path(text: str) -> ConfigPath:
    """Inverse of format_config_path, for the paths in msgspec's messages."""
    steps: list[str | int] = []
    for match in _PATH_STEP.finditer(text, 1):
        name, index = match.group(1), match.group(2)
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(_ANY_KEY)
    return tuple(steps)


class _BadYaml(Exception):
    """Internal: text that does not parse; `line` is where (None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _parse_tree(text: str, *, source: str) -> Any:
    """ruamel.yaml's round-trip tree of `text`; raises _BadYaml naming the line of bad YAML."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "it is not valid YAML"
        if mark is None:
            raise _BadYaml(f"{source} is not valid YAML: {problem}.", None) from exc
        raise _BadYaml(
            f"{source}, line {mark.line + 1}, column {mark.column + 1}: "
            f"the file is not valid YAML: {problem}.",
            mark.line + 1,
        ) from exc
    except YAMLError as exc:
        raise _BadYaml(f"{source} is not valid YAML: {exc}", None) from exc
    except RecursionError:
        raise _BadYaml(f"{source} nests its values too deeply to be read.", None) from None


class YamlDocument:
    """A parsed YAML file: plain data (``{env: VAR}`` resolved) plus every node's position.

    ``data`` holds only dicts, lists, str, int, float, bool and None, so it can be
    handed to msgspec or anything else; positions are looked up with ``position``.
    """

    def __init__(self, source: str, tree: Any, *, error: type[ConfigError]) -> None:
        self.source = source
        self._tree = tree
        self._check_expansion(tree, (), {}, error)
        # Aliases share their anchor's copy, as they share its node.
        self._copies: dict[int, Any] = {}
        self.data: Any = self._plain(tree, (), error)

    @classmethod
    def parse(cls, text: str, *, source: str, error: type[ConfigError]) -> YamlDocument:
        """Parse YAML text; ``source`` names it in messages.

        Raises ``error`` on bad YAML, and on a document that expands to more
        than MAX_CONFIG_VALUES values (an alias bomb).
        """
        try:
            tree = _parse_tree(text, source=source)
        except _BadYaml as exc:
            raise error(str(exc)) from exc.__cause__
        try:
            return cls(source, tree, error=error)
        except RecursionError:
            raise error(f"{source} nests its values too deeply to be read.") from None

    def position(self, at: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``at``, or of its key when ``key`` is set.

        A path that leaves the tree (an unknown index, a scalar) stops at the
        deepest node that exists, so there is always an answer.
        """
        node = self._tree
        line, column = _own_position(node)
        for depth, step in enumerate(at):
            last = depth == len(at) - 1
            found = _child_position(node, step, key=key and last)
            if found is None:
                break
            line, column = found
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
        return line + 1, column + 1

    def completes(self, at: Sequence[str | int]) -> bool:
        """True when the node at ``at`` is followed by a sibling of itself or of an ancestor,
        i.e. it does not reach the end of the document."""
        node = self._tree
        for step in at:
            if isinstance(node, Mapping):
                keys = list(node)
                if step not in node:
                    return False
                if keys.index(step) < len(keys) - 1:
                    return True
            elif isinstance(node, list) and isinstance(step, int):
                if step >= len(node):
                    return False
                if step < len(node) - 1:
                    return True
            else:
                return False
            node = node[step]
        return False

    def line_of(self, at: Sequence[str | int]) -> int:
        """1-based line of the value at ``at``."""
        return self.position(at)[0]

    def error(
        self,
        error: type[ConfigError],
        at: Sequence[str | int],
        problem: str,
        *,
        key: bool = False,
    ) -> ConfigError:
        """An ``error`` whose message starts with this file and the position of ``at``.

        ``problem`` is the rest of the sentence: what is wrong and how to fix it.
        """
        line, column = self.position(at, key=key)
        return error(f"{self.source}, line {line}, column {column}: {problem}")

    def convert(
        self,
        schema: type[T],
        *,
        error: type[ConfigError],
        at: Sequence[str | int] = (),
    ) -> T:
        """Validate the value at ``at`` (the whole document by default) into ``schema``.

        Raises ``error`` naming the file, line, column and ``$.path`` of the first
        invalid value, with the closest known key suggested for an unknown one.
        """
        value = self.data
        for step in at:
            value = value[step]
        if value is None and not at:
            raise error(f"{self.source} is empty; it should hold a mapping of settings.")
        try:
            return msgspec.convert(value, schema, strict=False)
        except msgspec.ValidationError as exc:
            where, problem, is_key = explain_validation_error(exc, schema, prefix=tuple(at))
            raise self.error(error, where, problem, key=is_key) from exc

    def _plain(self, node: Any, at: ConfigPath, error: type[ConfigError]) -> Any:
        """Copy ruamel's tree into builtins, replacing ``{env: VAR}`` with the variable's value.

        An alias is a reference to its anchor's node; its copy is the anchor's
        copy too, so the copy is as small as the file (its expanded size was
        checked before).
        """
        if isinstance(node, Mapping | list):
            copied = self._copies.get(id(node))
            if copied is None:
                copied = self._copies[id(node)] = self._copy(node, at, error)
            return copied
        return _plain_scalar(node)

    def _copy(self, node: Any, at: ConfigPath, error: type[ConfigError]) -> Any:
        if isinstance(node, Mapping):
            if len(node) == 1 and "env" in node and isinstance(node["env"], str):
                return self._env_value(node["env"], at, error)
            return {
                self._plain(k, at, error): self._plain(v, (*at, _key_step(k)), error)
                for k, v in node.items()
            }
        return [self._plain(item, (*at, i), error) for i, item in enumerate(node)]

    def _check_expansion(
        self, node: Any, at: ConfigPath, sizes: dict[int, int], error: type[ConfigError]
    ) -> int:
        """How many values `node` stands for once its aliases are expanded (each node once).

        Raises ``error`` at the first node past MAX_CONFIG_VALUES: a few lines of
        aliases of aliases (a "billion laughs") would otherwise expand for minutes.
        """
        if not isinstance(node, Mapping | list):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a node reached again below itself counts once
        if isinstance(node, Mapping):
            items = [(_key_step(k), v) for k, v in node.items()]
        else:
            items = list(enumerate(node))
        total = 1 + sum(
            self._check_expansion(value, (*at, step), sizes, error) for step, value in items
        )
        if total > MAX_CONFIG_VALUES:
            raise self.error(
                error,
                at,
                f"`{format_config_path(at)}` expands to more than {MAX_CONFIG_VALUES:,} values: "
                "YAML aliases (`*name`) repeat the values they name, and these repeat them "
                "too many times over.",
            )
        sizes[id(node)] = total
        return total

    def _env_value(self, name: str, at: ConfigPath, error: type[ConfigError]) -> str:
        value = os.environ.get(name)
        if value is None:
            raise self.error(
                error,
                at,
                f"`{format_config_path(at)}` reads the environment variable `{name}`, "
                "which is not set.",
            )
        return value


def _plain_scalar(node: Any) -> Any:
    # ruamel's scalar subclasses (HexInt, ScalarFloat, an anchored boolean...) become builtins.
    from ruamel.yaml.scalarbool import ScalarBoolean

    if node is None or isinstance(node, bool | ScalarBoolean):
        return node if node is None else bool(node)
    for builtin in (str, int, float):
        if isinstance(node, builtin):
            return builtin(node)
    return node


def explain_validation_error(
    exc: msgspec.ValidationError,
    schema: type[Any],
    *,
    prefix: ConfigPath = (),
    root: str = "$",
) -> tuple[ConfigPath, str, bool]:
    """Turn msgspec's message into (path of the culprit, a sentence for users, is it a key).

    ``prefix`` is where the converted value sits in its document and ``root``
    how paths are written (``$`` for YAML; ``tool.runtime`` for pyproject.toml).
    An unknown key gets the closest known key suggested.
    """
    match = _ERROR_AT.match(str(exc))
    assert match is not None  # the pattern accepts any text
    what = match.group("what")
    relative = _parse_config_path(match.group("path") or "$")
    where = prefix + relative
    shown = format_config_path(where, root=root)

    unknown = _UNKNOWN_FIELD.match(what)
    if unknown:
        name = unknown.group("key")
        problem = f"unknown key `{name}` in `{shown}`"
        known = _known_keys(schema, relative)
        close = difflib.get_close_matches(name, known, n=1) if known else []
        if close:
            problem += f"; did you mean `{close[0]}`?"
        elif known:
            problem += f"; the known keys are {_listing(known)}."
        else:
            problem += "."
        return (*where, name), problem, True

    missing = _MISSING_FIELD.match(what)
    if missing:
        return where, f"`{shown}` is missing the required key `{missing.group('key')}`.", False

    expected = _EXPECTED_GOT.match(what)
    constrained = _EXPECTED_CONSTRAINED.match(what)
    if expected:
        detail = (
            f"expected {_type_words(expected.group('expected'))}, "
            f"got {_type_words(expected.group('got'))}"
        )
    elif constrained:
        # "Expected `int` >= 1", "Expected `str` of length >= 1"
        detail = f"expected {_type_words(constrained.group('expected'))}{constrained.group('rest')}"
    else:
        detail = what[:1].lower() + what[1:]
    return where, f"invalid value at `{shown}`: {detail}.", False


def read_yaml_document(
    path: Path,
    *,
    error: type[ConfigError],
    schema: type[Any] | None = None,
    max_bytes: int = MAX_CONFIG_BYTES,
) -> YamlDocument:
    """Read and parse a YAML file.

    Raises ``error`` if it is missing, unreadable, bigger than ``max_bytes``,
    not YAML, or expands past MAX_CONFIG_VALUES values. With ``schema``, a
    large file's opening part is checked against it first, so an early
    mistake is reported (as ``convert`` would) without parsing the rest.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(
                f"Config file {path} is {size / 1024 / 1024:.1f} MiB; a config file may be "
                f"at most {max_bytes / 1024 / 1024:g} MiB."
            )
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)  # it may have grown since
        if len(raw) > max_bytes:
            raise error(f"Config file {path} is over {max_bytes / 1024 / 1024:g} MiB.")
        text = raw.decode("utf-8")
    except FileNotFoundError as exc:
        raise error(f"Config file {path} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"Config file {path} could not be read: {exc}.") from exc
    if schema is not None and len(text) > 2 * _PREFIX_BYTES:
        _check_opening(text, source=str(path), schema=schema, error=error)
    return YamlDocument.parse(text, source=str(path), error=error)


def _check_opening(text: str, *, source: str, schema: type[Any], error: type[ConfigError]) -> None:
    """Raise the first mistake of the file's opening part, if it is one the rest cannot undo.

    The opening part is cut at a line end. What the cut makes of the document
    (an open bracket, a last entry missing its keys) lies on the path to its
    last node; a mistake anywhere else is in a part that is complete, so it
    is the file's own.
    """
    cut = text.rfind("\n", 0, _PREFIX_BYTES)
    if cut <= 0:
        return
    opening = text[: cut + 1]
    last_line = opening.count("\n")
    try:
        tree = _parse_tree(opening, source=source)
    except _BadYaml as exc:
        # The cut can only break the end: a problem well before it is real.
        if exc.line is not None and exc.line < last_line - 1:
            raise error(str(exc)) from None
        return
    try:
        document = YamlDocument(source, tree, error=error)
    except Exception:
        return  # e.g. an unset {env: VAR}: the full parse reports it in order
    if document.data is None:
        return
    try:
        msgspec.convert(document.data, schema, strict=False)
    except msgspec.ValidationError as exc:
        where, problem, is_key = explain_validation_error(exc, schema)
        if document.completes(where):
            raise document.error(error, where, problem, key=is_key) from None


def load_yaml_config(path: Path, schema: type[T], *, error: type[ConfigError]) -> T:
    """Read a YAML file and validate it into ``schema``.

    Raises ``error`` (a ConfigError subclass) whose message names the file, the
    line and column, the ``$.path`` of the bad value and what is wrong.
    """
    return read_yaml_document(path, error=error).convert(schema, error=error)


def _key_step(key: Any) -> str | int:
    return key if isinstance(key, str | int) else str(key)


def _own_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 0, 0
    return int(lc.line), int(lc.col)


def _child_position(node: Any, step: str | int, *, key: bool) -> tuple[int, int] | None:
    """0-based position of a child (or of its key) as ruamel recorded it."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if isinstance(node, Mapping):
            if step not in node:
                return None
            line, column = lc.key(step) if key else lc.value(step)
        elif isinstance(node, list) and isinstance(step, int):
            line, column = lc.item(step)
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    return int(line), int(column)


def _unwrap(info: Any) -> Any:
    from msgspec import inspect

    while isinstance(info, inspect.Metadata):
        info = info.type
    return info


def _known_keys(schema: type[Any], at: ConfigPath) -> list[str]:
    """Keys the schema accepts for the mapping at ``at`` (empty when it accepts any)."""
    from msgspec import inspect

    info: Any = inspect.type_info(schema)
    for step in at:
        info = _unwrap(info)
        if isinstance(step, str) and step != _ANY_KEY:
            struct = _struct_member(info, field=step)
            if struct is None:
                return []
            info = next(f.type for f in struct.fields if f.encode_name == step)
            continue
        for member in _members(info):
            if isinstance(member, inspect.ListType | inspect.SetType | inspect.VarTupleType):
                info = member.item_type
                break
            if isinstance(member, inspect.DictType):
                info = member.value_type
                break
        else:
            return []
    struct = _struct_member(_unwrap(info), field=None)
    return [f.encode_name for f in struct.fields] if struct is not None else []


def _members(info: Any) -> list[Any]:
    from msgspec import inspect

    if isinstance(info, inspect.UnionType):
        return [_unwrap(t) for t in info.types]
    return [info]


def _struct_member(info: Any, *, field: str | None) -> Any:
    """The Struct type among ``info``'s union members (the one with ``field``, if given)."""
    from msgspec import inspect

    for member in _members(info):
        if isinstance(member, inspect.StructType) and (
            field is None or any(f.encode_name == field for f in member.fields)
        ):
            return member
    return None


def _type_words(names: str) -> str:
    words = [_TYPE_WORDS.get(name, f"`{name}`") for name in names.split(" | ")]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _listing(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)
