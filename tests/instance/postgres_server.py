"""A real PostgreSQL server for the tests, and fresh schemas on it.

`shared_server()` is the machine's server at 127.0.0.1:5432 (as user
`postgres`, trust auth: what this machine and CI run), or
RUNTIME_TEST_POSTGRES_URL when set. Where none answers, `PrivateServer`
starts one from PostgreSQL's binaries (/usr/lib/postgresql/*/bin) in a
temporary directory, listening on a Unix socket only, as user `nobody` when
the tests run as root (PostgreSQL refuses to run as root). The restart tests
always use a private server, since they stop it under the storage's feet.

Each test works in its own schema of one database per test session, chosen
with `options=-csearch_path=<schema>` in the URL; both are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

if TYPE_CHECKING:
    from collections.abc import Iterator

SHARED_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
URL_VARIABLE = "RUNTIME_TEST_POSTGRES_URL"
HOW_TO_GET_ONE = (
    "no PostgreSQL server for the tests: run one at 127.0.0.1:5432 that user `postgres` may "
    f"enter without a password, set {URL_VARIABLE} to a superuser URL of another, or install "
    "PostgreSQL's server binaries (`apt-get install postgresql`) so the tests start their own"
)
# No fsync and no full-page writes: a test server's data is thrown away anyway.
_FAST = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


class Server:
    """A PostgreSQL server the tests may create databases on: `admin_url` is a superuser's
    connection to its `postgres` database."""

    def __init__(self, admin_url: str, *, description: str) -> None:
        self.admin_url = admin_url
        self.description = description

    def url(self, db_name: str, **params: str) -> str:
        """A URL of database `db_name` on this server, with extra query parameters."""
        base, _, query = self.admin_url.partition("?")
        base = base.rsplit("/", 1)[0] + "/" + quote(db_name, safe="")
        pairs = [pair for pair in query.split("&") if pair]
        pairs += [f"{key}={quote(value, safe='')}" for key, value in params.items()]
        return base + ("?" + "&".join(pairs) if pairs else "")

    def execute(self, *statements: str, db_name: str = "postgres") -> None:
        """Run statements in autocommit as the superuser (blocking; the tests' setup)."""
        with psycopg.connect(self.url(db_name), autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new, empty database, dropped (its connections ended) afterwards."""
        name = f"runtime_test_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield name
        finally:
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def schema(self, db_name: str) -> Iterator[Schema]:
        """A new schema of `db_name`, dropped afterwards."""
        schema = Schema(self, db_name, f"t_{uuid.uuid4().hex[:12]}")
        self.execute(f'CREATE SCHEMA "{schema.name}"', db_name=db_name)
        try:
            yield schema
        finally:
            self.execute(f'DROP SCHEMA IF EXISTS "{schema.name}" CASCADE', db_name=db_name)

    @property
    def params(self) -> dict[str, str]:
        """The admin URL's connection parameters (host, port, user, ...)."""
        return dict(conninfo_to_dict(self.admin_url))  # type: ignore[arg-type]

    def terminate(self, application_name: str) -> int:
        """End every backend whose application_name is that (as a crash of the connection
        would); return how many there were."""
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application_name,),
            ).fetchall()
        return len(rows)


class Schema:
    """One test's schema: `url()` connects with search_path set to it."""

    def __init__(self, server: Server, db_name: str, name: str) -> None:
        self.server = server
        self.db_name = db_name
        self.name = name

    def url(self, **params: str) -> str:
        """A URL of the schema's database whose connections use the schema, plus `params`."""
        return self.server.url(self.db_name, options=f"-csearch_path={self.name}", **params)


def shared_server() -> Server | None:
    """The machine's server (or RUNTIME_TEST_POSTGRES_URL's), if it answers."""
    url = os.environ.get(URL_VARIABLE, SHARED_URL)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return None
    return Server(url, description=f"the server at {url}")


def server_binaries() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    on_path = shutil.which("initdb")
    if found:
        return Path(found[-1]).parent
    return Path(on_path).parent if on_path else None


class PrivateServer(Server):
    """A server of our own in a temporary directory; `stop()` ends it and removes the directory."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._dir = Path(tempfile.mkdtemp(prefix="runtime-pg-"))
        self.data_dir = self._dir / "data"
        self.socket_dir = self._dir
        self._as: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self._dir, nobody.pw_uid, nobody.pw_gid)
            self._as = ["runuser", "-u", "nobody", "--"]
        self._log = self._dir / "server.log"
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self.start()
        super().__init__(
            f"postgresql://postgres@/postgres?host={self.socket_dir}",
            description=f"a server started in {self._dir}",
        )

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self._dir,
        )
        if result.returncode != 0:
            log = self._log.read_text() if self._log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({result.returncode}): {result.stderr}{log}"
            )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-k {self.socket_dir} -c listen_addresses='' {_FAST}"
        self._run(
            "pg_ctl", "start", "-w", "-D", str(self.data_dir), "-l", str(self._log), "-o", options
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: roll back what is in flight; `immediate`: as if it crashed)."""
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data_dir), "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Stop the server and start it again, ending every connection."""
        self.stop_server(mode)
        self.start()

    def stop(self) -> None:
        """End the server and remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self.stop_server("immediate")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
