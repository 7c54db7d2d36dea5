"""Every resolution rule of the loader: which object a target resolves to, and each error."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime.errors import DefinitionError, LoadError
from runtime.loader.load import load_repository
from runtime.loader.target import LoadTarget

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Write = Callable[[str, str], Path]


ONE_ASSET_SOURCE = """
    from runtime import Definitions, asset, repository, job, op

    @asset
    def numbers() -> list[int]:
        return [1, 2, 3]

    @op
    def hello() -> str:
        return "hello"

    @job
    def greet():
        hello()
"""


ONE_ASSET = textwrap.dedent(ONE_ASSET_SOURCE)


def extra(source: str) -> str:
    return textwrap.dedent(source)


def test_one_definitions_object_is_the_location(write: Write) -> None:
    path = write("loc_one.py", ONE_ASSET + "\ndefs = Definitions(assets=[numbers], jobs=[greet])\n")
    repo = load_repository(LoadTarget(python_file=str(path)))
    assert set(repo.job_names()) == {"greet", "__ASSET_JOB"}
    assert [a.key for a in repo.assets] == ["numbers"]


def test_an_alias_of_the_same_definitions_counts_once(write: Write) -> None:
    path = write("loc_alias.py", ONE_ASSET + "\ndefs = Definitions(jobs=[greet])\nalias = defs\n")
    repo = load_repository(LoadTarget(python_file=str(path)))
    assert repo.job_names() == ["greet"]


def test_two_definitions_objects_are_an_error_listing_both(write: Write) -> None:
    path = write(
        "loc_two.py",
        ONE_ASSET + "\nfirst = Definitions(jobs=[greet])\nsecond = Definitions(assets=[numbers])\n",
    )
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path)))
    message = str(caught.value)
    assert str(path) in message
    assert "2 Definitions objects" in message
    assert "first" in message and "second" in message


def test_attribute_picks_one_of_two_definitions(write: Write) -> None:
    path = write(
        "loc_pick.py",
        ONE_ASSET + "\nfirst = Definitions(jobs=[greet])\nsecond = Definitions(assets=[numbers])\n",
    )
    repo = load_repository(LoadTarget(python_file=str(path), attribute="second"))
    assert repo.job_names() == ["__ASSET_JOB"]


def test_without_definitions_a_single_repository_is_used(write: Write) -> None:
    path = write(
        "loc_repo.py",
        ONE_ASSET
        + extra(
            """
    @repository
    def my_repo():
        return [greet]
    """
        ),
    )
    repo = load_repository(LoadTarget(python_file=str(path)))
    assert repo.name == "my_repo"
    assert repo.job_names() == ["greet"]


def test_several_repositories_without_attribute_are_an_error_listing_them(write: Write) -> None:
    path = write(
        "loc_repos.py",
        ONE_ASSET
        + extra(
            """
    @repository
    def repo_a():
        return [greet]

    @repository
    def repo_b():
        return [greet]
    """
        ),
    )
    with pytest.raises(LoadError, match=r"2 repositories \(repo_a, repo_b\)") as caught:
        load_repository(LoadTarget(python_file=str(path)))
    assert str(path) in str(caught.value)
    repo = load_repository(LoadTarget(python_file=str(path), attribute="repo_b"))
    assert repo.name == "repo_b"


def test_definitions_win_over_repositories(write: Write) -> None:
    path = write(
        "loc_both.py",
        ONE_ASSET
        + extra(
            """
    @repository
    def other():
        return [greet]

    defs = Definitions(assets=[numbers])
    """
        ),
    )
    repo = load_repository(LoadTarget(python_file=str(path)))
    assert repo.job_names() == ["__ASSET_JOB"]


def test_nothing_loadable_says_what_was_looked_for(write: Write) -> None:
    path = write("loc_empty.py", ONE_ASSET)
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path)))
    message = str(caught.value)
    assert f"file {path} defines nothing loadable" in message
    assert "Definitions" in message and "@repository" in message


def test_missing_attribute_names_it_and_what_exists(write: Write) -> None:
    path = write("loc_missing_attr.py", ONE_ASSET + "\ndefs = Definitions(jobs=[greet])\n")
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(python_file=str(path), attribute="nope"))
    assert str(caught.value) == f"file {path} has no attribute 'nope'; it defines defs."


def test_attribute_of_the_wrong_type(write: Write) -> None:
    path = write("loc_wrong_type.py", ONE_ASSET + "\nanswer = 42\n")
    with pytest.raises(LoadError, match="Attribute 'answer' of file .* is a int; expected"):
        load_repository(LoadTarget(python_file=str(path), attribute="answer"))


def test_attribute_that_needs_arguments(write: Write) -> None:
    path = write(
        "loc_needs_args.py",
        ONE_ASSET + "\ndef make(env, region='eu'):\n    return Definitions(jobs=[greet])\n",
    )
    with pytest.raises(LoadError, match=r"function that needs arguments \(env\)"):
        load_repository(LoadTarget(python_file=str(path), attribute="make"))


def test_attribute_function_without_arguments_is_called(write: Write) -> None:
    path = write(
        "loc_factory.py", ONE_ASSET + "\ndef make():\n    return Definitions(jobs=[greet])\n"
    )
    repo = load_repository(LoadTarget(python_file=str(path), attribute="make"))
    assert repo.job_names() == ["greet"]


def test_attribute_function_returning_something_else(write: Write) -> None:
    path = write("loc_factory_bad.py", ONE_ASSET + "\ndef make():\n    return [greet]\n")
    with pytest.raises(LoadError, match="returned a list; expected it to return Definitions"):
        load_repository(LoadTarget(python_file=str(path), attribute="make"))


LAZY_REPOSITORY = """
    from runtime import job, op, repository

    CALLS = []

    @op
    def one() -> int:
        return 1

    def build_good():
        CALLS.append("good")

        @job
        def good():
            one()

        return good

    def build_broken():
        CALLS.append("broken")
        raise RuntimeError("the broken job cannot be built")

    def build_misnamed():
        @job
        def actually_called_this():
            one()

        return actually_called_this

    @repository
    def lazy():
        return {"jobs": {"good": build_good, "broken": build_broken, "misnamed": build_misnamed}}
"""


def test_lazy_repository_builds_nothing_until_asked(write: Write) -> None:
    import sys

    path = write("loc_lazy.py", LAZY_REPOSITORY)
    repo = load_repository(LoadTarget(python_file=str(path)))
    calls = sys.modules["loc_lazy"].CALLS
    assert repo.job_names() == ["good", "broken", "misnamed"]
    assert calls == []  # the lambda that raises was not called
    assert repo.get_job("good").name == "good"
    assert calls == ["good"]
    with pytest.raises(DefinitionError, match="the broken job cannot be built"):
        repo.get_job("broken")


def test_lazy_repository_entry_with_another_name_names_both(write: Write) -> None:
    path = write("loc_lazy_names.py", LAZY_REPOSITORY)
    repo = load_repository(LoadTarget(python_file=str(path)))
    with pytest.raises(DefinitionError) as caught:
        repo.get_job("misnamed")
    assert "'misnamed'" in str(caught.value)
    assert "'actually_called_this'" in str(caught.value)


def test_module_target_from_working_directory(write: Write, tmp_path: Path) -> None:
    write("team_pkg/__init__.py", "")
    write("team_pkg/defs.py", ONE_ASSET + "\ndefs = Definitions(jobs=[greet])\n")
    repo = load_repository(LoadTarget(module_name="team_pkg.defs", working_directory=str(tmp_path)))
    assert repo.job_names() == ["greet"]


def test_package_target(write: Write, tmp_path: Path) -> None:
    write("whole_pkg/__init__.py", ONE_ASSET + "\ndefs = Definitions(assets=[numbers])\n")
    repo = load_repository(LoadTarget(package_name="whole_pkg", working_directory=str(tmp_path)))
    assert [a.key for a in repo.assets] == ["numbers"]


def test_package_target_that_is_a_plain_module(write: Write, tmp_path: Path) -> None:
    write("plain_mod.py", ONE_ASSET + "\ndefs = Definitions(assets=[numbers])\n")
    with pytest.raises(LoadError, match="package 'plain_mod' is a module .*use --module-name"):
        load_repository(LoadTarget(package_name="plain_mod", working_directory=str(tmp_path)))


def test_module_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_repository(
            LoadTarget(module_name="no_such_module_xyz", working_directory=str(tmp_path))
        )
    message = str(caught.value)
    assert "module 'no_such_module_xyz'" in message
    assert str(tmp_path) in message
    assert any("--working-directory" in hint for hint in caught.value.hints)


def test_module_name_that_is_a_path_gets_a_file_hint(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_repository(LoadTarget(module_name="defs.py", working_directory=str(tmp_path)))
    assert any("--python-file defs.py" in hint for hint in caught.value.hints)


def test_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"
    with pytest.raises(LoadError, match=re.escape(f"file {missing}: the file does not exist")):
        load_repository(LoadTarget(python_file=str(missing)))


def test_file_target_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="it is a folder"):
        load_repository(LoadTarget(python_file=str(tmp_path)))
