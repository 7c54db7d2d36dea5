"""`runtime instance migrate | info` on a PostgreSQL instance, and a storage that cannot be
reached: one line naming the URL, its password hidden, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.instance.postgres_server import Schema

PASSWORD = "hunter2-not-shown"


def runtime_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RUNTIME_HOME": str(home)},
    )


def with_password(url: str) -> str:
    """The URL with a password (trust authentication ignores it; messages must hide it)."""
    scheme, _, rest = url.partition("://")
    user, at, hosts = rest.partition("@")
    assert at, f"expected a user in {url}"
    return f"{scheme}://{user.split(':')[0]}:{PASSWORD}@{hosts}"


def home_for(tmp_path: Path, url: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "instance.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {url}\n")
    return home


@pytest.mark.timeout(120)
def test_migrate_then_info(tmp_path: Path, postgres_schema: Schema) -> None:
    home = home_for(tmp_path, with_password(postgres_schema.url()))
    first = runtime_cli("instance", "migrate", home=home)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("PostgreSQL database at postgresql://")
    assert first.stdout.rstrip().endswith("migrated to schema version 2 (applied 1, 2).")
    again = runtime_cli("instance", "migrate", "--json", home=home)
    assert again.returncode == 0, again.stderr
    facts = json.loads(again.stdout)
    assert (facts["storage"], facts["schema_version"], facts["applied"]) == ("postgres", 2, [])
    info = runtime_cli("instance", "info", "--json", home=home)
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    assert facts["storage"] == "postgres" and facts["schema_version"] == 2
    assert facts["description"].startswith("PostgreSQL database at postgresql://")
    assert ":***@" in facts["description"]
    assert facts["runs"] == {"total": 0, "queued": 0, "in_flight": 0}
    for output in (first, again, info):
        assert PASSWORD not in output.stdout + output.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "command", [("instance", "info"), ("instance", "migrate"), ("run", "list")]
)
def test_a_database_that_cannot_be_reached_is_one_line(
    tmp_path: Path, postgres_schema: Schema, command: tuple[str, ...]
) -> None:
    missing = postgres_schema.server.url("no_such_database")
    home = home_for(tmp_path, with_password(missing))
    result = runtime_cli(*command, home=home)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: Cannot connect to the PostgreSQL database postgresql://")
    assert 'database "no_such_database" does not exist' in lines[0]
    assert PASSWORD not in result.stderr and ":***@" in lines[0]
    assert "Traceback" not in result.stderr
