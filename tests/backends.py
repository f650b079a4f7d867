"""Workspaces on both storage backends, for tests/conftest.py.

A test module marked ``pytestmark = pytest.mark.both_backends`` (or importing the fixture
``workspace_location`` from here, as tests/test_reservations.py does) runs each test that uses
``workspace`` (or ``workspace_location``, or ``backend``) twice: ``[sqlite]`` on a SQLite
folder copied from a template, ``[postgresql]`` on a fresh database of the test server
(tests/pg_server.py). Without the server the ``[postgresql]`` runs are skipped, saying why;
CI always has it. Unmarked modules get SQLite only.

Fixtures:
- ``backend``: "sqlite" or "postgresql";
- ``workspace_location``: a fresh, empty workspace's location (a folder path, or a URL), for
  tests that open it themselves (CLI runs, other processes);
- ``workspace``: that workspace, open;
- ``postgres_databases``: the session's ``TestDatabases`` (skips without a server);
- ``fresh_postgres_url``: a fresh database's URL, for PostgreSQL-only tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.locations import RUNS_DIR_ENV
from storage.workspace import Workspace
from tests.pg_server import SKIP_REASON, TestDatabases, server_url, url_for

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    opted_in = (metafunc.definition.get_closest_marker("both_backends") is not None
                or getattr(metafunc.module, "workspace_location", None) is workspace_location)
    if opted_in:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request) -> str:
    name = getattr(request, "param", "sqlite")
    if name == "postgresql" and server_url() is None:
        pytest.skip(SKIP_REASON)
    return name


@pytest.fixture(scope="session")
def _template_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "ws"
    Workspace.open(root).close()
    return root


@pytest.fixture(scope="session")
def postgres_databases():
    if server_url() is None:
        pytest.skip(SKIP_REASON)
    databases = TestDatabases(server_url())
    yield databases
    databases.close()


@pytest.fixture
def fresh_postgres_url(postgres_databases: TestDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new database holding an empty workspace; its run artifacts and exports go under tmp_path
    (also in processes this test starts: the environment variables are inherited)."""
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "server-runs"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))   # exports: never the user's own data folder
    name = postgres_databases.create()
    yield url_for(name)
    postgres_databases.drop(name)


@pytest.fixture
def workspace_location(backend: str, request, tmp_path: Path) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("fresh_postgres_url")
    root = tmp_path / "ws"
    shutil.copytree(request.getfixturevalue("_template_workspace"), root)
    return str(root)


@pytest.fixture
def workspace(workspace_location: str):
    """A fresh, empty workspace (SQLite: a copy of a template created once per test session)."""
    ws = Workspace.open(workspace_location)
    yield ws
    ws.close()
