"""The tests' PostgreSQL server and fresh databases on it.

``.ci/run`` (and a developer, README "Testing on PostgreSQL") starts a throwaway server with
``.ci/postgres start DIR`` and exports ``DPO_TEST_POSTGRES_URL`` (a superuser's URL) and
``DPO_TEST_POSTGRES_DATA`` (the cluster's data folder) and ``DPO_TEST_POSTGRES_BIN`` (its
programs' folder), for tests that stop and start the server (``pg_ctl``).
Without the URL the PostgreSQL tests are skipped, saying why.

Each test gets a database of its own, copied from a template that already holds the current
schema (``CREATE DATABASE … TEMPLATE``: a few milliseconds), and dropped after the test.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

URL_ENV = "DPO_TEST_POSTGRES_URL"
DATA_ENV = "DPO_TEST_POSTGRES_DATA"
BIN_ENV = "DPO_TEST_POSTGRES_BIN"
SKIP_REASON = (f"PostgreSQL tests need a server: {URL_ENV} is not set (.ci/run starts one; "
               "README, 'Testing on PostgreSQL', says how to start it yourself)")


def server_url() -> str | None:
    return os.environ.get(URL_ENV) or None


def url_for(database: str, password: str | None = None) -> str:
    """The server URL (as a user types it: postgresql://…) naming ``database``."""
    url = make_url(server_url()).set(database=database)
    if password is not None:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)


class TestDatabases:
    """Creates and drops the tests' databases (names carry this process's id, so two test
    sessions on one server never meet)."""

    __test__ = False  # not a test class, for pytest

    def __init__(self, url: str):
        self._admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                                    isolation_level="AUTOCOMMIT", pool_size=1)
        self._prefix = f"dpo_test_{os.getpid()}"
        self._numbers = itertools.count(1)
        self._template: str | None = None

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def template(self) -> str:
        """A database holding an empty workspace of the current schema (made on first use)."""
        if self._template is None:
            from storage.workspace import Workspace

            name = f"{self._prefix}_template"
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._execute(f'CREATE DATABASE "{name}"')
            Workspace.open(url_for(name)).close()  # close: a template must have no open connection
            self._template = name
        return self._template

    def create(self, empty: bool = False) -> str:
        """A new database's name: a copy of the template, or an ``empty`` one (no schema)."""
        name = f"{self._prefix}_{next(self._numbers)}"
        self._execute(f'CREATE DATABASE "{name}"' + ("" if empty else f' TEMPLATE "{self.template()}"'))
        return name

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._template is not None:
            self.drop(self._template)
        self._admin.dispose()


def pg_ctl(*args: str) -> subprocess.CompletedProcess:
    """Run ``pg_ctl -D $DPO_TEST_POSTGRES_DATA ARGS`` as the cluster's owner (e.g. ``"stop", "-m",
    "immediate"`` then ``"start", "-w"`` to take the server away and bring it back)."""
    data = os.environ[DATA_ENV]
    program = str(Path(os.environ[BIN_ENV]) / "pg_ctl") if os.environ.get(BIN_ENV) else "pg_ctl"
    command = [program, "-D", data, "-l", str(Path(data).parent / "server.log"), *args]
    owner = Path(data).owner()
    if os.geteuid() == 0 and owner != "root":
        command = ["runuser", "-u", owner, "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
