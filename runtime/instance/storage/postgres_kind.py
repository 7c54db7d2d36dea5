"""PostgreSQL as an instance storage: its options in instance.yaml (Dagster's keys) and how to build it.

```yaml
storage:
  postgres:
    postgres_url: postgresql://user:pass@db.example.com:5432/runtime   # or {env: RUNTIME_PG_URL}
# or
storage:
  postgres:
    postgres_db:
      username: runtime
      password: {env: RUNTIME_PG_PASSWORD}
      hostname: db.example.com            # or a Unix-socket directory: /var/run/postgresql
      db_name: runtime
      port: 5432
      params: {sslmode: require}          # any libpq connection keyword
    pool_size: 5                          # connections per process, besides the LISTEN one
    reconnect_timeout: 60                 # seconds to keep retrying a lost server
```

This module only validates and describes: it never imports the driver, so an
instance.yaml naming PostgreSQL is checked even where `runtime[postgres]` is
not installed, and nothing here touches the network.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

import msgspec

from runtime.instance.storage.registry import StorageKind

if TYPE_CHECKING:
    from pathlib import Path

    from runtime.instance.storage.base import RunStorage

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_URL = Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?://")]
HIDDEN = "***"

# Set on every connection unless the configuration (or libpq's environment variable) says
# otherwise. TCP keepalives make a LISTEN connection to a server that vanished without
# closing it (a host lost, a partition) fail within a minute instead of hanging for hours.
DEFAULT_CONNECT_PARAMS: dict[str, tuple[str, str | None]] = {
    "application_name": ("runtime", "PGAPPNAME"),
    "connect_timeout": ("10", "PGCONNECT_TIMEOUT"),
    "keepalives_idle": ("30", None),
    "keepalives_interval": ("10", None),
    "keepalives_count": ("3", None),
}


class PostgresDbConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`postgres_db`: a connection by its parts; `hostname` may be a Unix-socket directory."""

    username: _NonEmpty
    password: str | None = None
    hostname: _NonEmpty
    db_name: _NonEmpty
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 5432
    # libpq connection keywords (sslmode, options, target_session_attrs, ...).
    params: dict[str, str | int | float | bool] = {}
    scheme: Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?$")] = "postgresql"

    def __repr__(self) -> str:
        return f"PostgresDbConfig({display_db(self)!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("url", display_db(self))]


class PostgresStorageConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PostgreSQL storage: exactly one of `postgres_url` and `postgres_db`, and the pool's tuning."""

    postgres_url: _URL | None = None
    postgres_db: PostgresDbConfig | None = None
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    reconnect_timeout: Annotated[float, msgspec.Meta(ge=0)] = 60.0

    def __post_init__(self) -> None:
        # msgspec turns this into a validation error naming `$.storage.postgres` and its line.
        if (self.postgres_url is None) == (self.postgres_db is None):
            given = "both" if self.postgres_url is not None else "neither"
            raise ValueError(
                f"give exactly one of `postgres_url` and `postgres_db` ({given} is given)"
            )

    def __repr__(self) -> str:
        # The password stays out of logs and tracebacks that print the options.
        return f"PostgresStorageConfig({display_url(self)!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("url", display_url(self))]


def display_url(config: PostgresStorageConfig) -> str:
    """The database as a URL with the password replaced by `***`, for messages."""
    if config.postgres_url is not None:
        return redact_url(config.postgres_url)
    assert config.postgres_db is not None
    return display_db(config.postgres_db)


def redact_url(url: str) -> str:
    """`url` with the password in its user part and any `password=` parameter hidden; the
    rest stays as written."""
    scheme, separator, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = f"{userinfo.split(':', 1)[0]}:{HIDDEN}"
        netloc = f"{userinfo}@{hosts}"
    tail = re.sub(r"([?&]password=)[^&#]*", rf"\g<1>{HIDDEN}", tail)
    return f"{scheme}{separator}{netloc}{tail}"


def display_db(db: PostgresDbConfig) -> str:
    """A `postgres_db` section as the URL it amounts to, password hidden."""
    user = quote(db.username, safe="")
    if db.password is not None:
        user += f":{HIDDEN}"
    if db.hostname.startswith("/"):
        return (
            f"{db.scheme}://{user}@/{quote(db.db_name, safe='')}?host={db.hostname}&port={db.port}"
        )
    host = f"[{db.hostname}]" if ":" in db.hostname else db.hostname
    return f"{db.scheme}://{user}@{host}:{db.port}/{quote(db.db_name, safe='')}"


def connect_params(config: PostgresStorageConfig) -> tuple[str, dict[str, Any]]:
    """What to hand `psycopg.AsyncConnection.connect`: a conninfo string and keyword overrides.

    Our defaults (application name, connect timeout) apply only where the
    configuration sets nothing.
    """
    defaults = {
        key: value
        for key, (value, variable) in DEFAULT_CONNECT_PARAMS.items()
        if variable is None or variable not in os.environ
    }
    if config.postgres_url is not None:
        present = {key for key, _ in parse_qsl(urlsplit(config.postgres_url).query)}
        return config.postgres_url, {k: v for k, v in defaults.items() if k not in present}
    db = config.postgres_db
    assert db is not None
    params: dict[str, Any] = dict(defaults)
    params.update({key: _libpq_value(value) for key, value in db.params.items()})
    params.update(host=db.hostname, port=str(db.port), user=db.username, dbname=db.db_name)
    if db.password is not None:
        params["password"] = db.password
    return "", params


def _libpq_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def open_postgres_storage(home: Path, config: PostgresStorageConfig) -> RunStorage:
    """The PostgreSQL storage (not connected yet); raises StorageError without the driver."""
    try:
        from runtime.instance.storage.postgres import PostgresRunStorage
    except ImportError as exc:
        from runtime.errors import StorageError

        raise StorageError(
            f"The PostgreSQL storage ({display_url(config)}) needs the psycopg driver, which "
            f"is not installed ({exc}); install it with `pip install 'runtime[postgres]'`."
        ) from exc
    return PostgresRunStorage(config)


STORAGE_KIND = StorageKind(
    name="postgres",
    title="PostgreSQL",
    config_type=PostgresStorageConfig,
    open=open_postgres_storage,
)
