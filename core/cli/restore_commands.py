"""``restore``: a workspace folder's backups (storage.backups), listed or put back.

    python main.py restore WORKSPACE [--json]            list the backups, newest first
    python main.py restore WORKSPACE --backup NAME       put that one in place of studio.db

Restoring checks the backup first (a damaged one is refused), moves the current ``studio.db``
aside as ``studio.db.before-restore-<time>`` (never deleted) and opens the restored workspace
to show it works (an older backup is upgraded then, after a backup of its own).

Exit codes: 0 done (or listed), 2 the folder, the name or the backup cannot be used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.operations.wording import plural

RESTORE_HELP = """\
The app backs up a workspace folder's studio.db into its backups/ folder before every schema
upgrade and at most once a day when it opens it (SQLite's online backup API; the newest 5 are
kept). Without --backup this lists them; with --backup NAME it puts that one back. The file it
replaces is kept beside it as studio.db.before-restore-<time>."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("restore", help="list a workspace's backups, or restore one",
                              description=RESTORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="a workspace folder")
    p.add_argument("--backup", metavar="NAME", help="the backup to restore (a name the list shows)")
    p.add_argument("--json", action="store_true", help="list the backups as JSON")
    p.set_defaults(func=run_restore)


def run_restore(args: argparse.Namespace) -> int:
    from core.cli.data_commands import _refused
    from storage.backups import list_backups, restore_backup
    from storage.locations import is_url
    from storage.workspace import Workspace, WorkspaceError

    if is_url(args.workspace):
        return _refused(WorkspaceError("restore works on a workspace folder; a database server keeps its own backups"))
    root = Path(args.workspace).expanduser().resolve()
    if not root.is_dir():
        return _refused(WorkspaceError(f"{root} is not a folder"))
    if args.backup is None:
        backups = list_backups(root)
        if args.json:
            print(json.dumps([b.to_dict() for b in backups], indent=2))
        elif not backups:
            print(f"{root}: no backups in {root / 'backups'}")
        else:
            print(f"{root}: {plural(len(backups), 'backup', grouped=False)}, newest first")
            for b in backups:
                print(f"  {b.name}  {b.created:%Y-%m-%d %H:%M:%S}  {b.reason:<18} {b.size / 1e6:8.1f} MB")
            print(f"restore one: python main.py restore {args.workspace} --backup NAME")
        return 0
    try:
        restored = restore_backup(root, args.backup)
    except WorkspaceError as exc:
        return _refused(exc)
    except OSError as exc:
        return _refused(WorkspaceError(f"cannot restore {args.backup} into {root}: {exc.strerror or exc}"))
    kept = f"; the studio.db it replaced is kept as {restored.moved_aside}" if restored.moved_aside else ""
    print(f"restored {restored.backup.name} ({restored.backup.created:%Y-%m-%d %H:%M:%S}) into {root}{kept}")
    try:
        with Workspace.open(root, create=False) as ws:
            from core.operations.data import workspace_stats

            stats = workspace_stats(ws)
    except WorkspaceError as exc:
        return _refused(exc)
    print(f"{root} opens: {plural(stats.pairs, 'pair', grouped=False)}, "
          f"{plural(stats.verdicts, 'verdict', grouped=False)}")
    return 0
