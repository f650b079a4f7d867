"""A workspace: a folder holding ``studio.db`` plus ``runs/`` and ``exports/``.

Open one with ``Workspace.open(folder)`` (created on first use) or
``Workspace.open("postgresql://...")`` for a shared team store. Work happens in short
sessions: ``with ws.session() as s`` for reads and ordinary writes, ``with ws.writing() as
s`` for a write that must not fail half-way under concurrent writers (it takes SQLite's
write lock up front with ``BEGIN IMMEDIATE``, so a second process waits for the busy
timeout instead of failing with "database is locked" when it upgrades a read lock).
Both commit on a clean exit and roll back on an exception. The workspace's settings are read
and written through ``storage.settings`` (``read_settings`` / ``update_settings``).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from storage.migrations import SchemaTooNewError, ensure_schema

DB_NAME = "studio.db"
BUSY_TIMEOUT_S = 30.0

__all__ = ["Workspace", "WorkspaceError", "SchemaTooNewError", "default_workspace_dir"]


class WorkspaceError(RuntimeError):
    pass


def default_workspace_dir() -> Path:
    """The default workspace in the user's data folder (XDG / AppData / Application Support)."""
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "DPO Studio" / "default-workspace"


def _is_url(location: str) -> bool:
    return "://" in location


def _sqlite_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is
        # deferred and cannot be made IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit survives a crash
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Workspace:
    """Handle on one workspace. Cheap to share: it holds an engine, never a session."""

    def __init__(self, root: Path | None, engine: Engine, location: str, upgraded_from: int):
        self.root = root
        self.engine = engine
        self.location = location
        #: The schema version found on disk before opening (equal to the current one if no upgrade ran).
        self.upgraded_from = upgraded_from
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(engine.execution_options(sqlite_immediate=True),
                                            expire_on_commit=False)

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | os.PathLike, create: bool = True) -> "Workspace":
        """Open (and on first use create) a workspace folder, or a SQLAlchemy database URL.

        Raises ``WorkspaceError`` when the folder cannot be used and ``SchemaTooNewError``
        for a workspace written by a newer version.
        """
        location = os.fspath(location)
        if _is_url(location):
            root = None
            engine = create_engine(location)
        else:
            root = Path(location).expanduser().resolve()
            if root.exists() and not root.is_dir():
                raise WorkspaceError(f"{root} is a file, not a workspace folder.")
            db_path = root / DB_NAME
            if not db_path.exists():
                if not create:
                    raise WorkspaceError(f"{root} is not a DPO Studio workspace (no {DB_NAME}).")
                if root.exists() and any(p for p in root.iterdir() if p.name not in {"runs", "exports"}):
                    raise WorkspaceError(
                        f"{root} is not empty and holds no {DB_NAME}; give a new or empty folder "
                        "to create a workspace.")
            try:
                root.mkdir(parents=True, exist_ok=True)
                (root / "runs").mkdir(exist_ok=True)
                (root / "exports").mkdir(exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(f"cannot create workspace folder {root}: {exc.strerror}") from exc
            engine = _sqlite_engine(db_path)
        try:
            with engine.connect().execution_options(sqlite_immediate=True) as conn:
                with conn.begin():
                    found = ensure_schema(conn, str(root or location))
        except SchemaTooNewError:
            engine.dispose()
            raise
        return cls(root, engine, str(root or location), found)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- folders -----------------------------------------------------------------------
    def _folder(self, name: str) -> Path:
        if self.root is None:
            raise WorkspaceError(f"a database-URL workspace ({self.location}) has no local {name}/ folder")
        return self.root / name

    @property
    def runs_dir(self) -> Path:
        return self._folder("runs")

    @property
    def exports_dir(self) -> Path:
        return self._folder("exports")

    # -- sessions ----------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work; commits on success, rolls back on error, always closes."""
        with self._sessions() as session:
            with session.begin():
                yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """Like ``session()`` but takes the write lock at BEGIN (SQLite ``BEGIN IMMEDIATE``)."""
        with self._write_sessions() as session:
            with session.begin():
                yield session
