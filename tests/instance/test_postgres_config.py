"""instance.yaml for PostgreSQL: Dagster's keys, `{env: VAR}` anywhere, errors with file, line
and key, and the password kept out of every description."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from runtime.errors import InstanceConfigError
from runtime.instance.config import INSTANCE_FILE_NAME, load_instance_config
from runtime.instance.storage.postgres_kind import (
    PostgresDbConfig,
    PostgresStorageConfig,
    connect_params,
    display_url,
    redact_url,
)

if TYPE_CHECKING:
    from pathlib import Path


def _write(home: Path, text: str) -> Path:
    path = home / INSTANCE_FILE_NAME
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_url_is_taken_as_it_is_with_our_defaults_where_it_sets_none(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
        storage:
          postgres:
            postgres_url: postgresql://ada:s3cret@db.example.com:6543/runs?application_name=etl
            pool_size: 3
        """,
    )
    config = load_instance_config(tmp_path)
    options = config.storage.options
    assert config.storage.kind == "postgres"
    assert isinstance(options, PostgresStorageConfig)
    assert options.pool_size == 3 and options.reconnect_timeout == 60.0
    conninfo, params = connect_params(options)
    assert conninfo == "postgresql://ada:s3cret@db.example.com:6543/runs?application_name=etl"
    # application_name is the URL's; the rest are our defaults.
    assert params == {
        "connect_timeout": "10",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
    }
    assert (
        display_url(options) == "postgresql://ada:***@db.example.com:6543/runs?application_name=etl"
    )


def test_postgres_db_with_values_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_PASSWORD", "hunter2")
    monkeypatch.setenv("PG_PORT", "6432")
    _write(
        tmp_path,
        """
        storage:
          postgres:
            postgres_db:
              username: ops
              password: {env: PG_PASSWORD}
              hostname: db.internal
              db_name: runtime
              port: {env: PG_PORT}
              params: {sslmode: require, keepalives: true}
        """,
    )
    options = load_instance_config(tmp_path).storage.options
    assert isinstance(options, PostgresStorageConfig)
    assert options.postgres_db == PostgresDbConfig(
        username="ops",
        password="hunter2",
        hostname="db.internal",
        db_name="runtime",
        port=6432,
        params={"sslmode": "require", "keepalives": True},
    )
    conninfo, params = connect_params(options)
    assert conninfo == ""
    assert params == {
        "application_name": "runtime",
        "connect_timeout": "10",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "sslmode": "require",
        "keepalives": "1",
        "host": "db.internal",
        "port": "6432",
        "user": "ops",
        "dbname": "runtime",
        "password": "hunter2",
    }
    shown = display_url(options)
    assert shown == "postgresql://ops:***@db.internal:6432/runtime"
    assert "hunter2" not in repr(options) and "hunter2" not in repr(options.postgres_db)
    assert "hunter2" not in str(options.__rich_repr__())


def test_a_unix_socket_directory_is_a_hostname(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
        storage:
          postgres:
            postgres_db: {username: ops, hostname: /var/run/postgresql, db_name: runtime}
        """,
    )
    options = load_instance_config(tmp_path).storage.options
    assert display_url(options) == "postgresql://ops@/runtime?host=/var/run/postgresql&port=5432"
    assert connect_params(options)[1]["host"] == "/var/run/postgresql"


def test_passwords_are_hidden_in_every_form_of_url() -> None:
    assert redact_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgres://u:p%40ss@h1:5432,h2:5433/db?sslmode=require") == (
        "postgres://u:***@h1:5432,h2:5433/db?sslmode=require"
    )
    assert redact_url("postgresql:///db?host=/tmp/sock&password=p&user=u") == (
        "postgresql:///db?host=/tmp/sock&password=***&user=u"
    )


def test_an_environment_variable_that_is_not_set_names_the_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        storage:
          postgres:
            postgres_url: {env: RUNTIME_TEST_SURELY_UNSET_URL}
        """,
    )
    with pytest.raises(InstanceConfigError) as caught:
        load_instance_config(tmp_path)
    assert str(caught.value) == (
        f"{path}, line 3, column 19: `$.storage.postgres.postgres_url` reads the environment "
        "variable `RUNTIME_TEST_SURELY_UNSET_URL`, which is not set."
    )


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        (
            "postgres_url: mysql://localhost/db",
            3,
            r"invalid value at `\$\.storage\.postgres\.postgres_url`: expected a string matching",
        ),
        (
            "postgres_url: postgresql://a/b\n    postgres_db: {username: u, hostname: h, db_name: d}",
            3,
            r"invalid value at `\$\.storage\.postgres`: give exactly one of `postgres_url` and "
            r"`postgres_db` \(both is given\)",
        ),
        ("pool_size: 2", 3, r"give exactly one of `postgres_url` and `postgres_db` \(neither"),
        (
            "postgres_db: {username: u, hostname: h, db_name: d, port: 99999}",
            3,
            r"`\$\.storage\.postgres\.postgres_db\.port`: expected an integer <= 65535",
        ),
        (
            "postgres_db: {username: u, host: h, db_name: d}",
            3,
            r"unknown key `host` in `\$\.storage\.postgres\.postgres_db`; did you mean `hostname`\?",
        ),
        (
            "postgres_url: postgresql://a/b\n    reconnect_timout: 5",
            4,
            r"unknown key `reconnect_timout` .*did you mean `reconnect_timeout`\?",
        ),
    ],
)
def test_mistakes_name_the_file_line_and_key(
    tmp_path: Path, body: str, line: int, expected: str
) -> None:
    path = _write(tmp_path, f"storage:\n  postgres:\n    {body}\n")
    with pytest.raises(InstanceConfigError, match=expected) as caught:
        load_instance_config(tmp_path)
    assert str(caught.value).startswith(f"{path}, line {line}, ")


def test_choosing_postgres_loads_no_driver_until_the_storage_opens(tmp_path: Path) -> None:
    _write(tmp_path, "storage:\n  postgres:\n    postgres_url: postgresql://localhost/x\n")
    code = (
        "import sys; from pathlib import Path\n"
        "from runtime.instance.config import load_instance_config\n"
        f"config = load_instance_config(Path({str(tmp_path)!r}))\n"
        "print(config.storage.kind, 'psycopg' in sys.modules,\n"
        "      'runtime.instance.storage.postgres' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["postgres", "False", "False"]
