"""Opening a workspace's ``studio.db`` so that a damaged file is refused, never written to.

An existing file is first looked at without writing (``storage.sqlite_file``): its header and
size, then through a read-only SQLite connection its schema, its schema version and — for a
file up to ``QUICK_CHECK_MAX_BYTES`` — SQLite's ``quick_check``. Only when that passes is it
opened for writing, which switches it to WAL mode and may upgrade its schema. Before an
upgrade, and at most once a day, a backup is made (``storage.backups``; a file too big for a
``quick_check`` on every open gets one first, so a damaged file is refused rather than
copied). A file or folder this process cannot write opens read-only: no WAL switch, no
upgrade, no backup (``immutable`` when SQLite could not even create its -shm file there).

A new workspace's database is built under a temporary name and linked into place, so
``studio.db`` is never seen empty: a 0-byte ``studio.db`` is damage, not a workspace to create.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from storage import backups
from storage.errors import WorkspaceDamaged, WorkspaceError, WorkspaceReadOnly
from storage.migrations import SCHEMA_VERSION, ensure_schema, too_new
from storage.sqlite_file import (QUICK_CHECK_MAX_BYTES, Access, access, connect_read_only, file_quick_check, header_problem,
                                 is_damage, is_read_only_refusal, quick_check, read_only_uri)

DB_NAME = "studio.db"
BUSY_TIMEOUT_S = 30.0
NEW_PREFIX = ".studio.db.new-"   # a new database being built (left only by a crash)


def sqlite_engine(db_path: Path, read_only: Access | None = None) -> Engine:
    """The workspace's engine: WAL, foreign keys, busy timeout; with ``read_only`` (the access
    found) a read-only one that never switches the journal mode."""
    if read_only is None:
        engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": BUSY_TIMEOUT_S})
    else:
        uri = read_only_uri(db_path, immutable=not read_only.folder_writable)
        engine = create_engine("sqlite://", poolclass=QueuePool, creator=lambda: sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is
        # deferred and cannot be made IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only is None:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit survives a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False) and read_only is None
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def damaged(root: Path, db_path: Path, problem: str) -> WorkspaceDamaged:
    """The one-line refusal of a damaged database: the file, what is wrong, what to do."""
    found = backups.list_backups(root)
    where = shlex.quote(str(root))
    if found:
        todo = (f"restore a backup: `python main.py restore {where}` lists its "
                f"{len(found)} backup{'s' if len(found) != 1 else ''} (newest {found[0].name}); "
                f"`python main.py check {where}` shows what is wrong")
    else:
        todo = f"it has no backup; `python main.py check {where}` shows what is wrong"
    problem = " ".join(problem.replace("*** in database main ***", "").split()).rstrip(".")
    return WorkspaceDamaged(f"{db_path} is damaged ({problem}); nothing was written to it. To go on, {todo}.")


@dataclass
class OpenedFile:
    engine: Engine
    read_only_reason: str | None
    backup: backups.Backup | None = None       # made on this open
    backup_problem: str | None = None          # a daily backup that could not be made


def _look(root: Path, db_path: Path, shown: str, file_access: Access) -> tuple[int | None, bool]:
    """Read-only: (schema version or None for an empty database, whether ``quick_check`` ran)."""
    try:
        problem = header_problem(db_path)
    except OSError as exc:
        raise WorkspaceError(f"cannot read {db_path}: {exc.strerror or exc}") from None
    if problem is not None:
        raise damaged(root, db_path, problem)
    checked = db_path.stat().st_size <= QUICK_CHECK_MAX_BYTES
    # Without a -wal file no connection is open, so the file is read without locks and without
    # creating -shm/-wal beside it; a finding is trusted only if nobody wrote the file meanwhile.
    wal = db_path.with_name(db_path.name + "-wal")
    immutable = not file_access.folder_writable or not wal.exists()
    before = _stamp(db_path)
    problem, tables, version = _read(db_path, checked, immutable)
    if problem is not None and immutable and file_access.folder_writable and (
            _stamp(db_path) != before or wal.exists()):
        problem, tables, version = _read(db_path, checked, immutable=False)
    if problem is not None:
        raise damaged(root, db_path, problem)
    if tables and version is None:
        raise WorkspaceError(f"{db_path} is a SQLite database but not a DPO Studio workspace (it has no "
                             "schema_version table); nothing was changed. Give a new or empty folder.")
    if version is not None and version > SCHEMA_VERSION:
        raise too_new(shown, version)
    return version, checked


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _read(db_path: Path, checked: bool, immutable: bool) -> tuple[str | None, set[str], int | None]:
    """(SQLite's finding or None, the table names, the schema version or None)."""
    try:
        conn = connect_read_only(db_path, immutable=immutable)
        try:
            problem = quick_check(conn) if checked else None
            if problem is not None:
                return problem, set(), None
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = (conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
                       if "schema_version" in tables else None)
            return None, tables, version
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise WorkspaceError(f"cannot read {db_path}: {exc}") from None
        return str(exc), set(), None


def open_existing(root: Path, db_path: Path, shown: str) -> OpenedFile:
    """Check ``db_path`` without writing to it, back it up when due, and give its engine."""
    file_access = access(db_path)
    version, checked = _look(root, db_path, shown, file_access)
    reason = file_access.read_only_reason
    if reason is not None:
        if version != SCHEMA_VERSION:
            raise WorkspaceReadOnly(
                f"{root} is read-only ({reason}) and its database "
                + ("holds no workspace yet" if version is None else
                   f"needs an upgrade from schema version {version} to {SCHEMA_VERSION}")
                + "; open it where it can be written, or copy the folder")
        return OpenedFile(sqlite_engine(db_path, file_access), reason)
    opened = OpenedFile(sqlite_engine(db_path), None)
    if version is not None and version < SCHEMA_VERSION:
        try:   # an upgrade is not undone by anything but a copy made before it
            opened.backup = backups.make_backup(db_path, f"before-v{version}-to-v{SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            opened.engine.dispose()
            raise WorkspaceError(f"cannot back up {db_path} before upgrading its schema: {exc}; "
                                 "nothing was changed") from None
    elif version is not None and backups.backup_due(root):
        if not checked:
            _quick_check_large(root, db_path, opened.engine)
        try:
            opened.backup = backups.make_backup(db_path, backups.DAILY)
        except (OSError, sqlite3.Error) as exc:   # a day without a backup is no reason to stop work
            opened.backup_problem = f"no daily backup of {db_path}: {exc}"
    return opened


def _quick_check_large(root: Path, db_path: Path, engine: Engine) -> None:
    problem = file_quick_check(db_path, immutable=False)
    if problem is not None:
        engine.dispose()
        raise damaged(root, db_path, problem)


def create_new(db_path: Path, shown: str) -> None:
    """Build a new workspace database beside ``db_path`` and link it into place (unless another
    process just did: then that one is used)."""
    building = db_path.with_name(f"{NEW_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        engine = sqlite_engine(building)
        try:
            with engine.begin() as conn:
                ensure_schema(conn, shown)
        finally:
            engine.dispose()   # the last connection: the WAL is checkpointed into the file
        try:
            os.link(building, db_path)
        except FileExistsError:
            pass
        except OSError:   # a file system without hard links
            if not db_path.exists():
                os.replace(building, db_path)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)


def store_problem(exc: BaseException, root: Path) -> WorkspaceError | None:
    """A SQLite error met while working, as the refusal to show: damage found only now (a part
    of a large file no check had read), or a write the read-only file refused."""
    original = getattr(exc, "orig", None) or exc
    if not isinstance(original, sqlite3.DatabaseError):
        return None
    if is_damage(original):
        return damaged(root, root / DB_NAME, str(original))
    if is_read_only_refusal(original):
        return WorkspaceReadOnly(read_only_message(root, "the database file refused a write"))
    return None


def read_only_message(root: Path, reason: str) -> str:
    return (f"cannot change {root}: it is open read-only ({reason}); browsing, stats and export work, "
            "labelling, import and training need a workspace you can write")
