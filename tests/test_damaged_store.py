"""A store that refuses damage instead of spreading it: every command on a truncated, garbled,
empty, read-only or newer ``studio.db`` (tests/damaged_stores.py) gives one line and exit code
2, and nothing in the folder changes; backups are made and restored."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from main import main
from storage import backups
from storage.annotation_queue import AnnotationQueue
from storage.migrations import SCHEMA_VERSION
from storage.models import Pair, Verdict
from storage.workspace import Workspace, WorkspaceDamaged, WorkspaceReadOnly
from tests.damaged_stores import (DAMAGED, NEWER, READ_ONLY, case, db_of, fingerprint, labelled_workspace,
                                  read_only)
from tests.test_migrations import make_v1_workspace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return labelled_workspace(tmp_path_factory.mktemp("damage-template") / "ws")


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(template, copy)
    return copy


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps({"prompt": "new?", "chosen": "yes", "rejected": "no"}) + "\n")
    return path


def _commands(root: Path, pairs_file: Path, tmp_path: Path) -> list[list[str]]:
    ws = str(root)
    return [["stats", ws], ["import", ws, str(pairs_file)], ["export", ws, str(tmp_path / "out.jsonl")],
            ["runs", ws], ["evaluate", ws, "--adapter", "some-run"], ["demo-eval", ws, "--prompts", "1"],
            ["check", ws], ["train", ws, "--set", "max_steps=1"],
            ["bundle", "export", ws, "--annotator", "ada", str(tmp_path / "ada.dpobundle")]]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, argv
    return code, out, err


@pytest.mark.parametrize("name", DAMAGED + (NEWER,))
def test_every_command_refuses_a_damaged_or_newer_store_in_the_same_line_and_writes_nothing(
        name, root, pairs_file, tmp_path, capsys) -> None:
    with case(name, root):
        before = fingerprint(root)
        lines = set()
        for argv in _commands(root, pairs_file, tmp_path):
            code, _out, err = _run(argv, capsys)
            assert code == 2, (argv, err)
            assert len(err.splitlines()) == 1, (argv, err)
            lines.add(err.strip())
        assert fingerprint(root) == before   # studio.db byte for byte, and no journal, WAL or backup made
    assert len(lines) == 1, lines            # every command says the same
    line = lines.pop()
    if name == NEWER:
        assert line == (f"error: {root} was written by a newer DPO Studio (schema version {SCHEMA_VERSION + 1}; "
                        f"this build understands up to {SCHEMA_VERSION}). Update DPO Studio to open it; "
                        "nothing was changed.")
    else:
        assert line.startswith(f"error: {db_of(root)} is damaged (")
        assert "nothing was written to it" in line and f"python main.py check {root}" in line
    assert not (tmp_path / "out.jsonl").exists()


def test_each_damage_is_named(root, capsys) -> None:
    wanted = {"truncated": "is truncated (", "truncated_at_page": "its header counts",
              "garbage_header": "is not a SQLite database", "garbage_mid_file": "SQLite's quick_check:",
              "zero_bytes": "it is empty (0 bytes)"}
    for name, words in wanted.items():
        folder = root.parent / name
        shutil.copytree(root, folder)
        with case(name, folder):
            with pytest.raises(WorkspaceDamaged) as refused:
                Workspace.open(folder)   # create=True: an empty studio.db is damage, not a new workspace
        assert words in str(refused.value), (name, refused.value)
        assert "\n" not in str(refused.value)


def test_check_shows_what_sqlite_finds_in_a_damaged_file(root, capsys) -> None:
    with case("garbage_mid_file", root):
        before = fingerprint(root)
        code, out, err = _run(["check", str(root)], capsys)
        assert fingerprint(root) == before
    assert code == 2 and "is damaged" in err
    findings = [line for line in out.splitlines() if line.startswith("sqlite integrity_check: ")]
    assert findings and any("Page" in line or "page" in line for line in findings), out


def test_check_runs_sqlites_full_integrity_check(root, capsys) -> None:
    code, out, _ = _run(["check", str(root), "--json"], capsys)
    assert code == 0 and json.loads(out)["clean"]
    # An index that no longer matches its table: sound pages, so the workspace opens (quick_check
    # does not compare indexes with tables); only the full integrity_check finds it.
    with sqlite3.connect(db_of(root)) as conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX ix_pairs_judged_count ON pairs (split, id)' "
                     "WHERE name = 'ix_pairs_judged_count'")
    conn.close()
    code, out, _ = _run(["check", str(root), "--json"], capsys)
    [found] = [p for p in json.loads(out)["problems"] if p["kind"] == "sqlite_integrity"]
    assert code == 1 and any("ix_pairs_judged_count" in line for line in found["examples"]), found
    code, out, _ = _run(["check", str(root)], capsys)
    assert code == 1 and "problem [sqlite_integrity]" in out


@pytest.mark.parametrize("name", READ_ONLY)
def test_a_read_only_store_browses_and_exports_but_refuses_writes_in_one_line(
        name, root, pairs_file, tmp_path, capsys) -> None:
    with case(name, root):
        before = fingerprint(root)
        reason = "its folder is read-only" if name == "read_only_folder" else "studio.db is read-only"
        refusal = f"error: cannot change {root}: it is open read-only ({reason}); "
        code, out, _ = _run(["stats", str(root)], capsys)
        assert code == 0 and "400 pairs" in out
        code, out, _ = _run(["export", str(root), str(tmp_path / "out.jsonl")], capsys)
        assert code == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 300
        assert _run(["runs", str(root)], capsys)[0] == 0
        assert _run(["check", str(root)], capsys)[0] == 0
        for argv in (["import", str(root), str(pairs_file)], ["train", str(root), "--set", "max_steps=1"],
                     ["check", str(root), "--fix"]):
            code, _out, err = _run(argv, capsys)
            assert code == 2 and err.startswith(refusal) and len(err.splitlines()) == 1, (argv, err)
        with Workspace.open(root) as ws:
            assert ws.read_only and ws.read_only_reason == reason
            with pytest.raises(WorkspaceReadOnly, match="labelling, import and training need"):
                queue = AnnotationQueue(ws, "ada")
                for view in queue.claim(1):
                    queue.record(view.pair_id, "a")
            with pytest.raises(WorkspaceReadOnly):
                with ws.writing():
                    pass
        after = fingerprint(root)
    # A read-only file in a writable folder may get SQLite's -shm/-wal beside it; nothing else changes.
    assert {k: v for k, v in after.items() if not k.endswith(("-shm", "-wal"))} == before
    if name == "read_only_folder":
        assert after == before


def _unprivileged() -> list[str] | None:
    """A command prefix that runs a program without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    try:
        ok = subprocess.run(prefix + ["true"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return prefix if ok else None


def test_a_read_only_folder_opened_by_a_process_that_cannot_write_it(root, pairs_file) -> None:
    """The real thing: permission bits, in a process that obeys them (root drops its capabilities)."""
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root and setpriv cannot drop the capabilities that ignore permissions")
    mode = root.stat().st_mode
    before = fingerprint(root)
    root.chmod(0o555)
    try:
        run = lambda *args: subprocess.run(prefix + [sys.executable, str(REPO / "main.py"), *args],  # noqa: E731
                                           capture_output=True, text=True, cwd=REPO, timeout=120)
        stats = run("stats", str(root))
        imported = run("import", str(root), str(pairs_file))
    finally:
        root.chmod(mode)
    assert stats.returncode == 0 and "400 pairs" in stats.stdout, stats.stderr
    assert imported.returncode == 2 and imported.stderr.startswith(
        f"error: cannot change {root}: it is open read-only (its folder is read-only)"), imported.stderr
    assert fingerprint(root) == before


def _counts(root: Path) -> tuple[int, int]:
    with Workspace.open(root) as ws, ws.session() as s:
        return s.scalar(select(func.count()).select_from(Pair)), s.scalar(select(func.count()).select_from(Verdict))


def test_a_daily_backup_is_restored_after_damage_and_the_damaged_file_kept(root, capsys) -> None:
    counts = _counts(root)               # the first open of the day makes a backup …
    _counts(root)                        # … the second does not
    [made] = backups.list_backups(root)
    assert made.reason == "daily" and made.name.endswith("-daily.db")
    with case("garbage_mid_file", root):
        damaged = fingerprint(root)["studio.db"]
        code, _, err = _run(["stats", str(root)], capsys)
        assert code == 2 and f"restore a backup: `python main.py restore {root}` lists its 1 backup" in err
        assert made.name in err
        code, out, _ = _run(["restore", str(root)], capsys)
        assert code == 0 and made.name in out and "daily" in out
        code, out, err = _run(["restore", str(root), "--backup", "studio-19990101-000000-daily.db"], capsys)
        assert code == 2 and "has no backup named" in err
        code, out, err = _run(["restore", str(root), "--backup", made.name], capsys)
    assert code == 0, err
    [aside] = [p for p in root.iterdir() if re.fullmatch(r"studio\.db\.before-restore-\d{8}-\d{6}", p.name)]
    assert fingerprint(root)[aside.name] == damaged    # moved aside, not deleted
    assert f"kept as {aside}" in out and "opens: 400 pairs, 300 verdicts" in out
    assert _counts(root) == counts
    code, out, _ = _run(["check", str(root)], capsys)
    assert code == 0 and "no problems found" in out


def test_a_damaged_backup_is_not_restored(root, capsys) -> None:
    _counts(root)
    [made] = backups.list_backups(root)
    with open(made.path, "r+b") as file:
        file.write(b"garbage" * 10)
    before = fingerprint(root)
    code, _, err = _run(["restore", str(root), "--backup", made.name], capsys)
    assert code == 2 and "is damaged too" in err
    assert fingerprint(root) == before


def test_a_backup_is_made_before_an_upgrade(tmp_path: Path) -> None:
    root = make_v1_workspace(tmp_path / "old")
    with Workspace.open(root) as ws:
        assert ws.upgraded_from == 1 and ws.backup is not None
    [made] = backups.list_backups(root)
    assert made.reason == f"before-v1-to-v{SCHEMA_VERSION}"
    with sqlite3.connect(made.path) as conn:   # the copy is of the file as it was
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_only_the_newest_backups_are_kept_and_one_a_day_is_due(root: Path) -> None:
    start = datetime(2026, 1, 1, 9, 0, 0)
    for day in range(backups.KEEP + 2):
        backups.make_backup(db_of(root), backups.DAILY, now=start + timedelta(days=day))
    kept = backups.list_backups(root)
    assert [b.created for b in kept] == [start + timedelta(days=d) for d in range(backups.KEEP + 1, 1, -1)]
    newest = kept[0].created
    assert not backups.backup_due(root, now=newest + timedelta(hours=23))
    assert backups.backup_due(root, now=newest + timedelta(hours=24))


def test_a_large_file_gets_its_quick_check_with_the_daily_backup(root, monkeypatch) -> None:
    """Above QUICK_CHECK_MAX_BYTES an open checks header and schema only; damage in the middle is
    then found where it is read, or by the quick_check that precedes the daily backup."""
    monkeypatch.setattr("storage.sqlite_store.QUICK_CHECK_MAX_BYTES", 0)
    _counts(root)                           # today's backup exists: no quick_check on the next opens
    with case("garbage_mid_file", root):
        before = fingerprint(root)
        with Workspace.open(root) as ws:    # cheap checks pass …
            with pytest.raises(WorkspaceDamaged, match="is damaged"):
                with ws.session() as s:     # … and reading the damaged pages refuses in one line
                    for table in ("prompts", "responses", "pairs", "verdicts"):
                        s.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
        assert fingerprint(root) == before
        shutil.rmtree(root / "backups")     # a backup is due: the quick_check before it refuses
        with pytest.raises(WorkspaceDamaged, match="SQLite's quick_check"):
            Workspace.open(root)
        assert not (root / "backups").exists() or not list((root / "backups").iterdir())


def test_a_folder_with_backups_but_no_database_is_not_made_a_new_workspace(root, pairs_file, capsys) -> None:
    _counts(root)
    db_of(root).unlink()
    code, _, err = _run(["import", str(root), str(pairs_file)], capsys)
    assert code == 2 and "holds backups but no studio.db" in err and "restore" in err
    assert not db_of(root).exists()


def test_read_only_helper_really_stops_writes(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("x")
    with read_only(path):
        with pytest.raises(OSError):
            open(path, "a").close()
