"""One function serves File ▸ Import / Export and ``main.py import`` / ``export``: the same file
imported both ways gives the same rows, and an export written both ways the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import DateTime, MetaData, select

import main
from gui.common.workers import running_workers
from gui.data.export_dialog import ExportDialog
from gui.data.import_dialog import ImportDialog
from storage.annotation_queue import AnnotationQueue
from storage.models import Choice
from storage.team import resolve
from storage.workspace import Workspace
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")

LABELLED = [{"prompt": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}."}
            for i in range(60)]
CHAT = [{"prompt": [{"role": "user", "content": f"Hi {i}"}],
         "chosen": [{"role": "assistant", "content": f"Hello {i}!"}],
         "rejected": [{"role": "assistant", "content": f"Go away {i}."}], "split": "eval" if i % 2 else "train"}
        for i in range(10)]
CANDIDATES = [{"prompt": f"Pick {i}", "responses": [f"one {i}", f"two {i}", f"three {i}"]} for i in range(8)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def every_row(location: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order. Left out: timestamps (``created_at``,
    ``retracted_at``…), which say when each import ran, not what it stored. Ids are kept: both
    workspaces start empty, so the same rows must get the same ids."""
    with Workspace.open(location, create=False) as ws:
        metadata = MetaData()
        metadata.reflect(ws.engine)
        dump = {}
        with ws.engine.connect() as conn:
            for name, table in sorted(metadata.tables.items()):
                kept = [c for c in table.columns if not isinstance(c.type, DateTime)]
                order = list(table.primary_key.columns) or kept
                dump[name] = [tuple(row) for row in conn.execute(select(*kept).order_by(*order))]
    return dump


def import_in_dialog(qtbot, ws: Workspace, path: Path, **kwargs):
    dialog = ImportDialog(ws)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.import_ended, timeout=60_000) as blocker:
        dialog.start_import(path=str(path), **kwargs)
    qtbot.waitUntil(lambda: not running_workers(), timeout=5_000)
    return blocker.args[0]


def test_import_through_the_dialog_and_the_command_stores_the_same_rows(qtbot, tmp_path: Path) -> None:
    files = [(write_jsonl(tmp_path / "prefs.jsonl", LABELLED), {}),
             (write_jsonl(tmp_path / "chat.jsonl", CHAT), {"format": "conversational"}),
             (write_jsonl(tmp_path / "cands.jsonl", CANDIDATES), {"source": "round-1"}),
             (tmp_path / "prefs.jsonl", {})]            # again: adds nothing, both ways
    gui_dir, cli_dir = tmp_path / "gui-ws", tmp_path / "cli-ws"
    with Workspace.open(gui_dir) as ws:
        outcomes = [import_in_dialog(qtbot, ws, path, **options) for path, options in files]
    for path, options in files:
        argv = ["import", str(cli_dir), str(path)]
        for option, value in options.items():
            argv += [f"--{option}", value]
        assert main.main(argv) == 0
    assert all(o.ok for o in outcomes) and outcomes[-1].pairs_added == 0 and outcomes[-1].duplicates == 60
    gui_rows, cli_rows = every_row(gui_dir), every_row(cli_dir)
    assert {name: len(rows) for name, rows in gui_rows.items()}["pairs"] == 60 + 10 + 8 * 3
    for table in cli_rows:
        assert gui_rows[table] == cli_rows[table], f"table {table} differs between the dialog and the command"
    assert gui_rows.keys() == cli_rows.keys()


@pytest.fixture
def judged(tmp_path: Path) -> Path:
    """Labelled pairs from a file, two people's second opinions, one of them a dispute settled."""
    location = tmp_path / "ws"
    assert main.main(["import", str(location), str(write_jsonl(tmp_path / "prefs.jsonl", LABELLED))]) == 0
    assert main.main(["import", str(location), str(write_jsonl(tmp_path / "chat.jsonl", CHAT))]) == 0
    with Workspace.open(location) as ws:
        for name, choices in (("ann", (Choice.A, Choice.B, Choice.B, Choice.TIE, Choice.BOTH_BAD)),
                              ("ben", (Choice.B, Choice.B, Choice.A, Choice.SKIP, Choice.A))):
            queue = AnnotationQueue(ws, name, overlap=3)
            for pair_id, choice in enumerate(choices, start=1):
                queue.record(pair_id, choice)
        resolve(ws, 2, "ann", Choice.A, note="settled")
    return location


@pytest.mark.parametrize("format, policy, split", [("trl", "majority", "all"), ("conversational", "unanimous", "eval"),
                                                   ("trl", "all", "train")])
def test_export_through_the_dialog_and_the_command_writes_the_same_bytes(qtbot, judged: Path, tmp_path: Path,
                                                                          format: str, policy: str,
                                                                          split: str) -> None:
    by_command = tmp_path / "cli.jsonl"
    assert main.main(["export", str(judged), str(by_command), "--format", format, "--policy", policy,
                      "--split", split]) == 0
    by_dialog = tmp_path / "gui.jsonl"
    with Workspace.open(judged, create=False) as ws:
        dialog = ExportDialog(ws)
        qtbot.addWidget(dialog)
        for combo, value in ((dialog.format, format), (dialog.policy, policy), (dialog.split, split)):
            combo.setCurrentIndex(combo.findData(value))
        with qtbot.waitSignal(dialog.export_ended, timeout=60_000) as blocker:
            dialog.start_export(str(by_dialog))
        qtbot.waitUntil(lambda: not running_workers(), timeout=5_000)
    assert blocker.args[0].written > 0
    assert by_dialog.read_bytes() == by_command.read_bytes()
