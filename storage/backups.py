"""Backups of a workspace's ``studio.db`` in ``<workspace>/backups/``, and restoring one.

A backup is written with SQLite's online backup API (``sqlite3.Connection.backup``) from a
read-only connection, so it is a consistent copy even while others write, into a temporary
name renamed into place (a half-written backup never lists). ``storage.sqlite_store`` makes one
before any schema upgrade and at most once a day on open; the newest ``KEEP`` are kept.

Names: ``studio-YYYYMMDD-HHMMSS-<reason>.db`` (local time), reason ``daily`` or
``before-v4-to-v5``. Restoring one moves the current ``studio.db`` (and its -wal/-shm files)
aside as ``studio.db.before-restore-<time>`` — never deleted — and copies the backup in.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from storage.errors import WorkspaceError
from storage.sqlite_file import access, connect_read_only, file_quick_check, header_problem

BACKUP_DIR = "backups"
KEEP = 5
DAILY = "daily"
DAY = timedelta(days=1)
_STAMP = "%Y%m%d-%H%M%S"
_NAME = re.compile(r"^studio-(\d{8}-\d{6})-([a-z0-9-]+?)(?:-(\d+))?\.db$")
SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Backup:
    name: str
    path: Path
    created: datetime
    reason: str
    size: int

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "created": self.created.isoformat(timespec="seconds"),
                "reason": self.reason, "bytes": self.size}


def backups_dir(root: Path) -> Path:
    return root / BACKUP_DIR


def list_backups(root: Path) -> list[Backup]:
    """The workspace's backups, newest first."""
    found = []
    folder = backups_dir(root)
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        created = datetime.strptime(match.group(1), _STAMP)
        found.append(Backup(path.name, path, created, match.group(2), path.stat().st_size))
    return sorted(found, key=lambda b: (b.created, b.name), reverse=True)


def backup_due(root: Path, now: datetime | None = None) -> bool:
    """No backup of any kind in the last day."""
    now = now or datetime.now()
    newest = list_backups(root)
    return not newest or now - newest[0].created >= DAY or newest[0].created > now


def make_backup(db_path: Path, reason: str, now: datetime | None = None, keep: int = KEEP) -> Backup:
    """Copy ``db_path`` into its workspace's backups folder with the online backup API; then only
    the newest ``keep`` backups stay. Raises OSError or sqlite3.Error when it cannot."""
    root = db_path.parent
    folder = backups_dir(root)
    folder.mkdir(exist_ok=True)
    stamp = (now or datetime.now()).strftime(_STAMP)
    target = folder / f"studio-{stamp}-{reason}.db"
    for n in range(1, 100):
        if not target.exists():
            break
        target = folder / f"studio-{stamp}-{reason}-{n}.db"
    partial = folder / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"   # two processes at once
    source = connect_read_only(db_path, immutable=False)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)   # all pages in one step, under one read transaction
        finally:
            copy.close()
        os.replace(partial, target)
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    made = Backup(target.name, target, datetime.strptime(stamp, _STAMP), reason, target.stat().st_size)
    for old in list_backups(root)[max(keep, 1):]:
        if old.path != target:
            old.path.unlink(missing_ok=True)
    return made


@dataclass(frozen=True)
class Restored:
    backup: Backup
    moved_aside: Path | None     # the studio.db that was there, kept under this name


def restore_backup(root: Path, name: str, db_name: str = "studio.db", now: datetime | None = None) -> Restored:
    """Put backup ``name`` in place of ``root/db_name``; the file it replaces is moved aside. The
    backup is checked (header and ``quick_check``) first: a damaged backup is refused."""
    backups = {b.name: b for b in list_backups(root)}
    backup = backups.get(name)
    if backup is None:
        known = ", ".join(sorted(backups, reverse=True)) or "none"
        raise WorkspaceError(f"{root} has no backup named {name!r} (backups: {known})")
    problem = header_problem(backup.path)
    if problem is None:
        problem = file_quick_check(backup.path, immutable=True)
    if problem is not None:
        raise WorkspaceError(f"the backup {backup.path} is damaged too ({problem}); pick another one")
    db_path = root / db_name
    if not access(db_path).folder_writable:
        raise WorkspaceError(f"cannot restore into {root}: the folder is read-only")
    stamp = (now or datetime.now()).strftime(_STAMP)
    aside = root / f"{db_name}.before-restore-{stamp}"
    incoming = root / f".{db_name}.restoring"
    shutil.copyfile(backup.path, incoming)
    with open(incoming, "rb+") as file:
        os.fsync(file.fileno())
    moved = None
    if db_path.exists():
        moved = aside
        for suffix in ("",) + SIDE_FILES:
            if (root / f"{db_name}{suffix}").exists():
                os.replace(root / f"{db_name}{suffix}", root / f"{aside.name}{suffix}")
    os.replace(incoming, db_path)
    return Restored(backup, moved)
