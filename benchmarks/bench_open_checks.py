"""What opening a big workspace costs now that a damaged studio.db is refused before any write.

    python benchmarks/bench_open_checks.py [--megabytes 1024] [--keep FOLDER]

Builds a real workspace, fills its responses table with raw SQL to ``--megabytes`` (a 1 GB
file takes about a minute), then times, each on the file as it is:
- ``Workspace.open`` when today's backup exists (header, schema and version read only: a file
  above ``QUICK_CHECK_MAX_BYTES`` gets no quick_check on this path);
- ``Workspace.open`` when a backup is due (quick_check, then the online backup);
- the parts on their own: the header check, ``PRAGMA quick_check(1)``, ``PRAGMA integrity_check(1)``
  (what ``main.py check`` runs) and the online backup.
The page cache is warm (the file was just written); a cold cache makes the reading ones slower
(quick_check of 1 GB: 1.5 s warm, 33 s cold on the 2-core test machine).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import backups  # noqa: E402
from storage.sqlite_file import connect_read_only, header_problem  # noqa: E402
from storage.workspace import Workspace  # noqa: E402


def fill(db: Path, megabytes: int) -> None:
    """Responses of one prompt, ~1 kB each, written straight into the file (the import path would
    take an hour for a gigabyte and measure something else)."""
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO prompts (text, hash, created_at) VALUES ('p', 'bench', '2026-01-01')")
    prompt_id = conn.execute("SELECT id FROM prompts WHERE hash = 'bench'").fetchone()[0]
    batch, n = 5000, 0
    while db.stat().st_size < megabytes * 1_000_000:
        rows = [(prompt_id, f"response {n + i} " + "word " * 180, hashlib.md5(str(n + i).encode()).hexdigest(),
                 "imported", "2026-01-01") for i in range(batch)]
        conn.executemany("INSERT INTO responses (prompt_id, text, hash, origin, created_at) VALUES (?, ?, ?, ?, ?)",
                         rows)
        conn.commit()
        n += batch
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def timed(label: str, fn) -> None:
    start = time.perf_counter()
    fn()
    print(f"{label:<52} {time.perf_counter() - start:8.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--keep", help="build the workspace here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-open-"))
    root = base / "ws"
    try:
        Workspace.open(root).close()
        db = root / "studio.db"
        fill(db, args.megabytes)
        print(f"{db}: {db.stat().st_size / 1e6:,.0f} MB")
        backups.make_backup(db, backups.DAILY)      # today's backup exists
        timed("Workspace.open, backup not due", lambda: Workspace.open(root).close())
        shutil.rmtree(root / "backups")
        timed("Workspace.open, backup due (quick_check + backup)", lambda: Workspace.open(root).close())
        timed("header and size check", lambda: header_problem(db))

        def pragma(name: str) -> None:
            conn = connect_read_only(db, immutable=False)
            conn.execute(f"PRAGMA {name}(1)").fetchall()
            conn.close()

        timed("PRAGMA quick_check(1)", lambda: pragma("quick_check"))
        timed("PRAGMA integrity_check(1) (main.py check)", lambda: pragma("integrity_check"))
        timed("online backup", lambda: backups.make_backup(db, backups.DAILY))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
