"""A workspace: a folder holding ``studio.db`` plus ``runs/`` and ``exports/`` — or a team
store in a PostgreSQL database.

Open one with ``Workspace.open(folder)`` (created on first use) or
``Workspace.open("postgresql://user@host/db")`` for a shared team store (needs the ``team``
extra: psycopg). Work happens in short sessions: ``with ws.session() as s`` for reads and
ordinary writes, ``with ws.writing() as s`` for a write that must not fail half-way under
concurrent writers. On SQLite it takes the write lock up front with ``BEGIN IMMEDIATE``, so a
second process waits for the busy timeout instead of failing with "database is locked" when it
upgrades a read lock. On PostgreSQL it is an ordinary READ COMMITTED transaction: writers that
read-then-write one row lock that row first (``storage.verdicts`` locks the pair it recounts).
Both commit on a clean exit and roll back on an exception. The workspace's settings are read
and written through ``storage.settings`` (``read_settings`` / ``update_settings``).

A folder's ``studio.db`` is looked at before anything writes to it (``storage.sqlite_store``): a
damaged one (empty, truncated, not SQLite, failing SQLite's checks) is refused with
``WorkspaceDamaged``, in one line naming the file, its backups (``storage.backups``, made before
an upgrade and once a day) and ``main.py restore``/``check``; one this process cannot write
opens read-only (``read_only``, ``read_only_reason``), where ``writing()`` raises
``WorkspaceReadOnly`` before touching anything. All are ``WorkspaceError``s, as is
``SchemaTooNewError``: a command prints the line and exits 2, the GUI shows it in a dialog.

A URL may carry a password (as typed by the user): it stays in memory, in ``location``, for
reopening; anything shown goes through ``display_location`` (``storage.locations``), which
masks it.
"""

from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage import sqlite_store
from storage.errors import WorkspaceDamaged, WorkspaceError, WorkspaceReadOnly
from storage.locations import (LocationError, database_url, display_location, is_url, scrub, server_folder,
                               url_runs_dir, user_data_dir)
from storage.migrations import SCHEMA_VERSION, SchemaTooNewError, ensure_schema
from storage.sqlite_store import DB_NAME, OpenedFile

CONNECT_TIMEOUT_S = 10
# Any constant: the key of the advisory lock under which a PostgreSQL schema is created or upgraded.
_SCHEMA_LOCK_KEY = 0x44504F53

__all__ = ["Workspace", "WorkspaceError", "WorkspaceDamaged", "WorkspaceReadOnly", "MissingDriverError",
           "PermissionDeniedError", "SchemaTooNewError", "default_workspace_dir", "display_location"]

TEAM_EXTRA_HINT = ('a PostgreSQL workspace needs the "team" extra: pip install "dpo-studio[team]" '
                   '(in a checkout: pip install -e ".[team]")')


class MissingDriverError(WorkspaceError):
    """A postgresql:// workspace on an install without psycopg (the ``team`` extra)."""


class PermissionDeniedError(WorkspaceError, PermissionError):
    """The member's role does not allow this (storage.members), or the database refused it
    (PostgreSQL: grants and row-level security, storage.pg_access); nothing was written."""


_INSUFFICIENT_PRIVILEGE = "42501"   # SQLSTATE of a missing grant and of a row-level security refusal


def default_workspace_dir() -> Path:
    """The default workspace in the user's data folder (XDG / AppData / Application Support)."""
    return user_data_dir() / "default-workspace"


def _postgres_engine(location: str) -> Engine:
    try:
        url = database_url(location)
    except LocationError as exc:
        raise WorkspaceError(f"{display_location(location)}: {exc}") from None
    try:
        # pool_pre_ping: a connection the server dropped (restart, network) is replaced, not reused.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    except ImportError:  # SQLAlchemy imports the driver here
        raise MissingDriverError(TEAM_EXTRA_HINT) from None


def connection_problem(exc: BaseException, location: str) -> str:
    """One line saying why the database at ``location`` could not be used, password masked."""
    original = getattr(exc, "orig", None) or exc
    reason = " ".join(str(original).split()) or type(original).__name__
    return scrub(f"cannot use the database {display_location(location)}: {reason}", location)


def _open_folder(folder: Path, create: bool) -> tuple[Path, OpenedFile]:
    """A workspace folder's database, checked (``storage.sqlite_store``), or a new one."""
    root = folder.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a workspace folder.")
    db_path = root / DB_NAME
    if db_path.exists():
        opened = sqlite_store.open_existing(root, db_path, str(root))
        if opened.read_only_reason is None:
            try:
                _make_folders(root)
            except WorkspaceError:
                opened.engine.dispose()
                raise
        return root, opened
    kept = {"runs", "exports"}
    if (root / "backups").is_dir():
        raise WorkspaceError(f"{root} holds backups but no {DB_NAME}; restore one: `python main.py restore "
                             f"{shlex.quote(str(root))}` lists them")
    if not create:
        raise WorkspaceError(f"{root} is not a DPO Studio workspace (no {DB_NAME}).")
    if root.exists() and any(p.name not in kept and not p.name.startswith(sqlite_store.NEW_PREFIX)
                             for p in root.iterdir()):
        raise WorkspaceError(
            f"{root} is not empty and holds no {DB_NAME}; give a new or empty folder "
            "to create a workspace.")
    _make_folders(root)
    try:
        sqlite_store.create_new(db_path, str(root))
    except OSError as exc:
        raise WorkspaceError(f"cannot create {db_path}: {exc.strerror or exc}") from None
    return root, OpenedFile(sqlite_store.sqlite_engine(db_path), None)


def _make_folders(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "runs").mkdir(exist_ok=True)
        (root / "exports").mkdir(exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create workspace folder {root}: {exc.strerror}") from exc


class Workspace:
    """Handle on one workspace. Cheap to share: it holds an engine, never a session."""

    def __init__(self, root: Path | None, engine: Engine, location: str, upgraded_from: int,
                 runs_dir: str | os.PathLike | None = None, read_only_reason: str | None = None):
        self.root = root
        self.engine = engine
        #: What opens it again: the folder, or the URL as given (which may hold a password:
        #: show it only through ``display_location``).
        self.location = location
        #: The schema version found on disk before opening (equal to the current one if no upgrade ran).
        self.upgraded_from = upgraded_from
        self._runs_dir_choice = runs_dir
        #: Why the workspace is open read-only ("studio.db is read-only", "its folder is
        #: read-only"), or None: then every ``writing()`` raises ``WorkspaceReadOnly``.
        self.read_only_reason = read_only_reason
        #: The backup this open made (``storage.backups.Backup``), and why a due one could not be made.
        self.backup = None
        self.backup_problem: str | None = None
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(engine.execution_options(sqlite_immediate=True),
                                            expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Workspace({display_location(self.location)!r})"

    @property
    def display_location(self) -> str:
        """The location as it may be shown (a URL's password masked)."""
        return display_location(self.location)

    @property
    def read_only(self) -> bool:
        """Browsing, stats and export work; labelling, import and training are refused."""
        return self.read_only_reason is not None

    @property
    def read_only_message(self) -> str | None:
        """The one line a refused write shows (None when the workspace can be written)."""
        if self.read_only_reason is None:
            return None
        return sqlite_store.read_only_message(self.root, self.read_only_reason)

    def require_writable(self) -> None:
        """Raise ``WorkspaceReadOnly`` (one line, saying why) on a read-only workspace."""
        if self.read_only_reason is not None:
            raise WorkspaceReadOnly(self.read_only_message)

    @property
    def runs_dir_choice(self) -> str | None:
        """The ``runs_dir`` it was opened with (another process opening it again passes the same)."""
        return None if self._runs_dir_choice is None else os.fspath(self._runs_dir_choice)

    @property
    def is_server(self) -> bool:
        """A team store on a database server (no workspace folder)."""
        return self.root is None

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | os.PathLike, create: bool = True,
             runs_dir: str | os.PathLike | None = None) -> "Workspace":
        """Open (and on first use create) a workspace folder, or a PostgreSQL database URL.

        ``runs_dir``: for a URL workspace, the local folder for run artifacts (default:
        ``$DPO_STUDIO_RUNS_DIR``, else a folder per server and database in the user's data
        folder); a workspace folder always keeps its runs in its own ``runs/``.
        Raises ``WorkspaceError`` when the folder or database cannot be used (``MissingDriverError``
        without psycopg) and ``SchemaTooNewError`` for a workspace written by a newer version.
        """
        location = os.fspath(location)
        opened: OpenedFile | None = None
        if is_url(location):
            root = None
            engine = _postgres_engine(location)
        else:
            root, opened = _open_folder(Path(location), create)
            engine = opened.engine
        shown = str(root) if root is not None else display_location(location)
        found = SCHEMA_VERSION   # a read-only file was checked to be at this version
        try:
            if opened is None or opened.read_only_reason is None:
                with engine.connect().execution_options(sqlite_immediate=True) as conn:
                    with conn.begin():
                        if engine.dialect.name == "postgresql":
                            # Two processes opening a new database at once: one creates the schema,
                            # the other waits here and then finds it (PostgreSQL DDL is transactional).
                            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                        found = ensure_schema(conn, shown)
        except SchemaTooNewError:
            engine.dispose()
            raise
        except DBAPIError as exc:
            engine.dispose()
            problem = sqlite_store.store_problem(exc, root) if root is not None else None
            raise (problem or WorkspaceError(connection_problem(exc, location if root is None else str(root)))) \
                from None
        workspace = cls(root, engine, str(root or location), found, runs_dir,
                        read_only_reason=opened.read_only_reason if opened else None)
        if opened is not None:
            workspace.backup, workspace.backup_problem = opened.backup, opened.backup_problem
        return workspace

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- folders -----------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """Run artifacts (checkpoints, adapters): the folder's ``runs/``; for a URL workspace a
        folder on this computer (see ``storage.locations.url_runs_dir``), created on first use."""
        if self.root is not None:
            return self.root / "runs"
        return self._local_folder(url_runs_dir(self.location, self._runs_dir_choice))

    @property
    def exports_dir(self) -> Path:
        """Where exports go by default: the folder's ``exports/``, or one on this computer."""
        if self.root is not None:
            return self.root / "exports"
        return self._local_folder(server_folder(self.location) / "exports")

    def _local_folder(self, path: Path) -> Path:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create the local folder {path} for {self.display_location}: "
                                 f"{exc.strerror}") from exc
        return path

    # -- sessions ----------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work; commits on success, rolls back on error, always closes. A database
        refusal for want of privileges is raised as ``PermissionDeniedError``, in one line; on
        SQLite, damage met only now is ``WorkspaceDamaged`` and a refused write ``WorkspaceReadOnly``."""
        with self._unit_of_work(self._sessions) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """Like ``session()`` but takes the write lock at BEGIN (SQLite ``BEGIN IMMEDIATE``). On a
        read-only workspace it raises ``WorkspaceReadOnly`` before touching anything."""
        self.require_writable()
        with self._unit_of_work(self._write_sessions) as session:
            yield session

    @contextmanager
    def _unit_of_work(self, sessions: sessionmaker) -> Iterator[Session]:
        try:
            with sessions() as session:
                with session.begin():
                    yield session
        except DBAPIError as exc:
            self._raise_refusal(exc)
            self._raise_store_problem(exc)
            raise

    def _raise_store_problem(self, exc: DBAPIError) -> None:
        problem = sqlite_store.store_problem(exc, self.root) if self.root is not None else None
        if problem is not None:
            raise problem from None

    def _raise_refusal(self, exc: DBAPIError) -> None:
        if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            return
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "permission denied"
        user = self.engine.url.username or "this role"
        raise PermissionDeniedError(scrub(
            f"{self.display_location} refused it: {reason} (connected as the database role {user}; "
            "an owner can give you another role: main.py team set-role)", self.location)) from None
