"""Workspaces damaged the ways files get damaged, for tests/test_damaged_store*.py.

``labelled_workspace(folder)`` builds a real workspace (300 labelled pairs plus 100 to label,
about 0.5 MB); ``DAMAGES[name](root)`` damages it in place; ``read_only(path)`` makes a file
or folder read-only for this process — even for root, who ignores permission bits: there it
also sets the immutable attribute (``chattr +i``), which root obeys, and skips the test, saying
why, where that is not possible. ``fingerprint(root)`` is every file's bytes hashed, to show
that a refusal wrote nothing anywhere in the folder.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from storage.ingest import ImportRecord, import_records
from storage.migrations import SCHEMA_VERSION
from storage.workspace import Workspace

DAMAGED = ("truncated", "truncated_at_page", "garbage_header", "garbage_mid_file", "zero_bytes")
READ_ONLY = ("read_only_file", "read_only_folder")
NEWER = "newer_schema"
ALL_CASES = DAMAGED + READ_ONLY + (NEWER,)


def labelled_workspace(root: Path) -> Path:
    with Workspace.open(root) as ws:
        rng = random.Random(7)
        words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
        text = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
        labelled = [ImportRecord(f"question {i}: {text(12)}", [text(40), text(40)], chosen=0, line=i + 1)
                    for i in range(300)]
        import_records(ws, labelled, "labels.jsonl")
        candidates = [ImportRecord(f"open question {i}: {text(12)}", [text(30), text(30)], line=i + 1)
                      for i in range(100)]
        import_records(ws, candidates, "candidates.jsonl")
    return root


def db_of(root: Path) -> Path:
    return root / "studio.db"


def _truncate(root: Path) -> None:
    db = db_of(root)
    os.truncate(db, db.stat().st_size * 6 // 10 + 123)     # mid-page


def _truncate_at_page(root: Path) -> None:
    db = db_of(root)
    os.truncate(db, db.stat().st_size // 4096 // 2 * 4096)   # whole pages, but fewer than the header counts


def _garbage_header(root: Path) -> None:
    with open(db_of(root), "r+b") as file:
        file.write(b"This is not SQLite, sorry!!\x00\x01\x02")


def _garbage_mid_file(root: Path) -> None:
    db = db_of(root)
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as file:
        file.seek(pages // 2 * 4096)
        file.write(random.Random(3).randbytes(3 * 4096))


def _zero_bytes(root: Path) -> None:
    os.truncate(db_of(root), 0)


def _newer_schema(root: Path) -> None:
    with sqlite3.connect(db_of(root)) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate, "truncated_at_page": _truncate_at_page, "garbage_header": _garbage_header,
    "garbage_mid_file": _garbage_mid_file, "zero_bytes": _zero_bytes, NEWER: _newer_schema}


def fingerprint(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root``."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _chattr(flag: str, path: Path) -> bool:
    try:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0
    except OSError:
        return False


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a folder) read-only while the block runs."""
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    immutable = False
    try:
        if os.geteuid() == 0:
            immutable = _chattr("+i", path)
            if not immutable:
                pytest.skip("running as root, who ignores permission bits, and chattr +i (which root obeys) "
                            "is not possible here")
        yield
    finally:
        if immutable:
            _chattr("-i", path)
        path.chmod(mode)


@contextmanager
def case(name: str, root: Path) -> Iterator[Path]:
    """The workspace at ``root`` in the state ``name`` names, while the block runs."""
    if name == "read_only_file":
        with read_only(db_of(root)):
            yield root
    elif name == "read_only_folder":
        with read_only(root):
            yield root
    else:
        DAMAGES[name](root)
        yield root
