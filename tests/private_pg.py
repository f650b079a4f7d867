"""A PostgreSQL server of a test's own, for tests that take the server away (``pg_ctl stop -m
immediate``) and bring it back — stopping the shared test server would break every other test.

It is made by the same script as the shared one (``.ci/postgres start DIR``: a cluster in DIR,
initdb as the ``postgres`` user when run as root, 127.0.0.1 on a free port), with one change:
``synchronous_commit`` is turned back on, so that a commit the app was told about survives the
immediate stop (the shared server turns it off for speed, and an immediate stop then loses the
last commits). Without PostgreSQL's programs the test is skipped, saying why (CI has them);
this helper never installs anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import pg_server

ROOT = Path(__file__).resolve().parents[1]
SKIP_REASON = ("needs PostgreSQL's server programs (initdb, pg_ctl) for a private server: "
               "apt-get install postgresql (.ci/run does)")


def postgres_programs() -> Path | None:
    """The folder of initdb and pg_ctl, found as .ci/postgres finds it; None when missing."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])
    return versions[-1] if versions and (versions[-1] / "initdb").exists() else None


class PrivateServer:
    """``start`` once; ``stop_now`` / ``start_again`` take it away and back; ``close`` deletes it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.env: dict[str, str] = {}

    def start(self) -> "PrivateServer":
        done = subprocess.run([str(ROOT / ".ci" / "postgres"), "start", str(self.folder)], capture_output=True,
                              text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f".ci/postgres start failed: {done.stderr[-2000:]}")
        for line in done.stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value
        engine = create_engine(make_url(self.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("ALTER SYSTEM SET synchronous_commit = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        engine.dispose()
        return self

    @property
    def url(self) -> str:
        return self.env[pg_server.URL_ENV]

    def create_database(self, name: str) -> str:
        """A new, empty database's URL (the workspace schema is made when the app opens it)."""
        engine = create_engine(make_url(self.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def _pg_ctl(self, *args: str) -> None:
        saved = {key: os.environ.get(key) for key in (pg_server.DATA_ENV, pg_server.BIN_ENV)}
        os.environ[pg_server.DATA_ENV] = self.env[pg_server.DATA_ENV]
        os.environ[pg_server.BIN_ENV] = self.env[pg_server.BIN_ENV]
        try:
            pg_server.pg_ctl(*args)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def stop_now(self) -> None:
        """Take the server away as a crash or a pulled cable would: no goodbye to the clients."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def start_again(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60")

    def close(self) -> None:
        subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", str(self.folder)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def private_server():
    if postgres_programs() is None:
        pytest.skip(SKIP_REASON)
    pytest.importorskip("psycopg", reason="the team extra (psycopg) is needed for a PostgreSQL workspace")
    # Straight under the temporary folder: pytest's own folders are the tester's alone, and the
    # server runs as the postgres user when the tests run as root.
    server = PrivateServer(Path(tempfile.mkdtemp(prefix="dpo-private-pg-")))
    try:
        server.start()
        yield server
    finally:
        server.close()
