"""A SQLite file looked at before anything writes to it: its header, SQLite's own checks, and
whether this process may write the file and its folder.

Cheap enough for every open of a 1 GB ``studio.db``. Measured on this project's 2-core test
machine, SQLite 3.40, page cache warm unless said; first a bare 1.02 GB table of 1,000,000 rows
with an index, then ``benchmarks/bench_open_checks.py`` (a real workspace filled to 1.03 GB):

==========================================  ================  ==================
check                                       bare table        workspace (bench)
==========================================  ================  ==================
header + size (``header_problem``)          < 0.1 ms          < 0.1 ms
schema read (sqlite_master)                 < 1 ms (cold 7)   —
``PRAGMA quick_check(1)``                   1.5 s (cold 33)   1.0 s
``PRAGMA integrity_check(1)``               7.4 s             3.2 s
online backup (``Connection.backup``)       6.5 s             1.4 s
``Workspace.open``, today's backup made     —                 0.003 s
``Workspace.open``, a backup due            —                 3.2 s
quick_check of a 36 MB file                 0.05 s            —
==========================================  ================  ==================

So every open reads the header and the schema, and runs ``quick_check`` only on files up to
``QUICK_CHECK_MAX_BYTES`` (64 MiB, about 0.1 s); a larger file gets its ``quick_check`` at most
once a day, just before its daily backup (``storage.sqlite_store``), which reads every page
anyway — a damaged file is refused then rather than copied over a good backup. Damage the
cheap checks miss in a large file is caught where SQLite reads it
(``storage.sqlite_store.store_problem``), and SQLite
refuses to write a page it finds damaged. ``main.py check`` runs the full ``integrity_check``.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

HEADER = b"SQLite format 3\x00"
HEADER_BYTES = 100
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
_CORRUPT, _READONLY, _NOTADB = 11, 8, 26  # SQLite's primary result codes


def header_problem(path: Path) -> str | None:
    """What is wrong with the file's size and 100-byte header, or None. Reads 100 bytes."""
    size = path.stat().st_size
    if size == 0:
        return "it is empty (0 bytes)"
    with open(path, "rb") as file:
        header = file.read(HEADER_BYTES)
    if header[: len(HEADER)] != HEADER and not (len(header) < len(HEADER) and HEADER.startswith(header)):
        return "it is not a SQLite database (its first bytes are not SQLite's header)"
    if size < HEADER_BYTES:
        return f"it is truncated ({size} bytes, less than SQLite's {HEADER_BYTES}-byte header)"
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1) or header[18] not in (1, 2) or header[19] not in (1, 2):
        return "its header is damaged (page size or file format)"
    if size % page_size:
        return f"it is truncated ({size:,} bytes is not a whole number of {page_size:,}-byte pages)"
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    wal = path.with_name(path.name + "-wal")
    # The page count in the header is only trusted when SQLite says so (valid_for), and not while
    # a WAL holds frames not yet copied back (a checkpoint cut short grows the file page by page).
    if pages and change_counter == valid_for and size < pages * page_size and not _non_empty(wal):
        return (f"it is truncated ({size:,} bytes; its header counts {pages:,} pages of "
                f"{page_size:,} bytes, {pages * page_size:,} bytes)")
    return None


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


@dataclass(frozen=True)
class Access:
    """Whether this process may write the database file and create files beside it (SQLite's
    -wal, -shm and journal files). Found by trying, which is right for root too."""
    file_writable: bool
    folder_writable: bool

    @property
    def read_only_reason(self) -> str | None:
        if not self.folder_writable:
            return "its folder is read-only"
        if not self.file_writable:
            return "studio.db is read-only"
        return None


def access(db_path: Path) -> Access:
    """Opens the file for writing (writes nothing) and creates and removes an empty file in its folder."""
    try:
        os.close(os.open(db_path, os.O_RDWR))
        file_writable = True
    except OSError:
        file_writable = False
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=db_path.parent)
        os.close(handle)
        os.unlink(probe)
        folder_writable = True
    except OSError:
        folder_writable = False
    return Access(file_writable, folder_writable)


def read_only_uri(db_path: Path, immutable: bool) -> str:
    """A read-only SQLite URI. ``immutable``: no locks and no -shm/-wal files (a read-only folder,
    where SQLite could not create them; a WAL left beside the file is then not read)."""
    return db_path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


def unlocked_read_is_safe(db_path: Path) -> bool:
    """No -wal beside the file: no connection has it open (in WAL mode the last one to close
    removes it), so it can be read ``immutable`` — without locks and without creating -shm/-wal
    beside it. (A writer starting meanwhile could make such a read see damage: recheck a finding
    with locks where the file changed.) Or its folder is read-only, when immutable is the only way."""
    return not db_path.with_name(db_path.name + "-wal").exists() or not access(db_path).folder_writable


def connect_read_only(db_path: Path, immutable: bool) -> sqlite3.Connection:
    return sqlite3.connect(read_only_uri(db_path, immutable), uri=True, check_same_thread=False)


def _findings(conn: sqlite3.Connection, pragma: str, limit: int) -> list[str]:
    """The lines a check pragma reports ([] for "ok"); several can come in one row."""
    rows = conn.execute(f"PRAGMA {pragma}({int(limit)})").fetchall()
    lines = [line.strip() for row in rows for line in str(row[0]).splitlines()]
    lines = [line for line in lines if line and not line.startswith("*** in database")]
    return [] if lines == ["ok"] else lines


def quick_check(conn: sqlite3.Connection) -> str | None:
    """SQLite's ``quick_check`` (every page's structure, not index contents): its first finding or None."""
    found = _findings(conn, "quick_check", 1)
    return f"SQLite's quick_check: {found[0]}" if found else None


def file_quick_check(db_path: Path, immutable: bool) -> str | None:
    """``quick_check`` of the file at ``db_path`` through its own read-only connection; the
    problem found (or the error that stopped SQLite reading it), None when it is sound."""
    try:
        conn = connect_read_only(db_path, immutable=immutable)
        try:
            return quick_check(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)


def integrity_findings(db_path: Path, immutable: bool = False, limit: int = 20) -> list[str]:
    """SQLite's full ``integrity_check`` (indexes against their tables too), read-only: its findings,
    [] for a sound file. Where damage stops it, ``quick_check``'s findings and why it stopped."""
    problem = header_problem(db_path)
    if problem is not None:
        return [problem]
    try:
        conn = connect_read_only(db_path, immutable)
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    try:
        try:
            return _findings(conn, "integrity_check", limit)
        except sqlite3.DatabaseError as exc:
            stopped = f"integrity_check stopped: {exc}"
        for pragma, most in (("quick_check", limit), ("quick_check", 1)):  # a shorter look may get through
            try:
                return _findings(conn, pragma, most) + [stopped]
            except sqlite3.DatabaseError:
                continue
        return [stopped]
    finally:
        conn.close()


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return None if code is None else code & 0xFF


def is_damage(exc: BaseException) -> bool:
    """A sqlite3 error saying the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB)."""
    code = _code(exc)
    if code is not None:
        return code in (_CORRUPT, _NOTADB)
    text = str(exc)   # Python 3.10: only the message tells
    return "malformed" in text or "not a database" in text


def is_read_only_refusal(exc: BaseException) -> bool:
    code = _code(exc)
    if code is not None:
        return code == _READONLY
    return "readonly database" in str(exc)
