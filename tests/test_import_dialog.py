"""File ▸ Import: same formats and all-or-nothing errors as the command line, off the UI thread."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from gui.data.import_dialog import ImportDialog
from gui.common.workers import running_workers
from storage.models import Pair, Verdict
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


def count(ws, model) -> int:
    with ws.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def run_import(qtbot, dialog, **kwargs):
    with qtbot.waitSignal(dialog.import_ended, timeout=60_000) as blocker:
        dialog.start_import(**kwargs)
    # The thread's quit is delivered through the event loop after our slot ran.
    qtbot.waitUntil(lambda: not running_workers(), timeout=5_000)
    return blocker.args[0]


def test_labelled_file_is_imported_with_progress(qtbot, workspace, tmp_path):
    rows = [{"prompt": f"Q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(300)]
    path = write_jsonl(tmp_path / "prefs.jsonl", rows)
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    progress = []
    dialog.progress.valueChanged.connect(progress.append)
    outcome = run_import(qtbot, dialog, path=path)
    assert outcome.ok and outcome.pairs_added == 300 and outcome.verdicts_added == 300
    assert count(workspace, Pair) == 300 and count(workspace, Verdict) == 300
    assert progress, "the progress bar moved"
    assert "Added 300 pairs" in dialog.status.text()
    assert not dialog.error_box.isVisible() and not dialog.running
    # Same file again: idempotent, nothing added.
    again = run_import(qtbot, dialog, path=path)
    assert again.ok and again.pairs_added == 0 and again.duplicates == 300
    assert count(workspace, Pair) == 300


def test_bad_row_refuses_the_whole_file_and_names_line_and_field(qtbot, workspace, tmp_path):
    rows = [{"prompt": "Q1?", "chosen": "good", "rejected": "bad"},
            {"prompt": "Q2?", "chosen": "good"},
            {"prompt": "Q3?", "chosen": "good", "rejected": "bad"}]
    path = write_jsonl(tmp_path / "broken.jsonl", rows)
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    dialog.show()
    outcome = run_import(qtbot, dialog, path=path, format="standard")
    assert not outcome.ok
    assert outcome.line == 2 and outcome.field == "rejected"
    assert dialog.error_box.isVisible()
    shown = dialog.error_where.text()
    assert shown.startswith("Line 2, field 'rejected':"), shown
    assert dialog.error_file.text().endswith("broken.jsonl")
    assert count(workspace, Pair) == 0  # nothing half-imported


def test_malformed_json_names_the_line(qtbot, workspace, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "responses": ["x", "y"]}\n{"prompt": "b", "responses": [\n', encoding="utf-8")
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    outcome = run_import(qtbot, dialog, path=str(path))
    assert not outcome.ok and outcome.line == 2
    assert dialog.error_where.text().startswith("Line 2")
    assert count(workspace, Pair) == 0


def test_candidates_file_becomes_pairs_to_label(qtbot, workspace, tmp_path):
    path = write_jsonl(tmp_path / "cands.jsonl", [{"prompt": "Pick", "responses": ["a", "b", "c"]}])
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    outcome = run_import(qtbot, dialog, path=path, source="round-1")
    assert outcome.ok and outcome.pairs_added == 3 and outcome.verdicts_added == 0
    with workspace.session() as s:
        assert set(s.scalars(select(Pair.source))) == {"round-1"}


def test_missing_file_and_empty_path(qtbot, workspace, tmp_path):
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    dialog.start_import(path="")
    assert dialog.error_box.isHidden() is False and "choose a file" in dialog.error_where.text()
    outcome = run_import(qtbot, dialog, path=str(tmp_path / "nope.jsonl"))
    assert not outcome.ok and "no such file" in dialog.error_where.text()


def test_cancel_stops_the_import_with_nothing_written(qtbot, workspace, tmp_path):
    rows = [{"prompt": f"Q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(20_000)]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    changes = []
    dialog.changes_made.connect(changes.append)
    with qtbot.waitSignal(dialog.import_ended, timeout=60_000) as blocker:
        dialog.start_import(path=path)
        assert dialog.close_button.text() == "Cancel import"
        qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)   # cancels, does not close
    qtbot.waitUntil(lambda: not running_workers(), timeout=5_000)
    outcome = blocker.args[0]
    assert outcome.cancelled and not outcome.ok and not changes
    assert "cancelled" in dialog.status.text() and dialog.close_button.text() == "Close"
    assert count(workspace, Pair) == 0 and count(workspace, Verdict) == 0


def test_a_successful_import_reports_its_changes(qtbot, workspace, tmp_path):
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    changes = []
    dialog.changes_made.connect(changes.append)
    run_import(qtbot, dialog, path=write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}]))
    assert len(changes) == 1 and changes[0].pairs and changes[0].verdicts
    assert "(1 train)" in dialog.status.text() or "(1 eval)" in dialog.status.text()


def test_skip_bad_rows_checkbox_imports_the_good_rows_and_names_the_report(qtbot, workspace, tmp_path):
    rows = [{"prompt": "Q1?", "chosen": "good", "rejected": "bad"}, {"prompt": "Q2?", "chosen": "good"},
            {"prompt": "Q3?", "chosen": "good", "rejected": "bad"}]
    path = write_jsonl(tmp_path / "broken.jsonl", rows)
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.skip_bad_rows.isChecked()            # all or nothing by default
    qtbot.mouseClick(dialog.skip_bad_rows, Qt.MouseButton.LeftButton)
    assert dialog.skip_bad_rows.isChecked()
    outcome = run_import(qtbot, dialog, path=path)
    assert outcome.ok and outcome.pairs_added == 2 and outcome.report.skipped_rows == 1
    report = outcome.report.bad_rows_report
    assert report.startswith(str(workspace.exports_dir)) and f"Left out 1 bad row, listed in {report}" in \
        dialog.status.text()
    assert count(workspace, Pair) == 2
    dialog.grab().save(str(tmp_path / "import-dialog-skip.png"))


def test_a_bad_item_of_a_json_array_is_named_with_its_line(qtbot, workspace, tmp_path):
    path = tmp_path / "array.json"
    path.write_text(json.dumps([{"prompt": "a", "chosen": "x", "rejected": "y"}, {"prompt": "b", "chosen": "x"}]))
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    outcome = run_import(qtbot, dialog, path=str(path))
    assert not outcome.ok and outcome.where == "item 2 (line 1)"
    assert dialog.error_where.text() == "Item 2 (line 1), field 'rejected': missing"


def test_a_datasets_folder_imports_from_the_dialog(qtbot, workspace, tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"prompt": f"Q{i}", "chosen": "a", "rejected": "b"} for i in range(3)]).save_to_disk(
        str(tmp_path / "saved"))
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    outcome = run_import(qtbot, dialog, path=str(tmp_path / "saved"))
    assert outcome.ok and outcome.pairs_added == 3 and "a datasets folder" in outcome.report.description


def test_export_dialog_keeps_file_type_and_format_consistent_and_writes_parquet(qtbot, workspace, tmp_path):
    import pyarrow.parquet as pq

    from gui.data.export_dialog import ExportDialog

    write = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"Q{i}", "chosen": "a", "rejected": "b"} for i in range(3)])
    dialog = ImportDialog(workspace)
    qtbot.addWidget(dialog)
    run_import(qtbot, dialog, path=write)
    export = ExportDialog(workspace, str(tmp_path))
    qtbot.addWidget(export)
    export.show()
    export.file_type.setCurrentIndex(export.file_type.findData(".parquet"))
    assert export.path.text().endswith("preferences.parquet")
    export.format.setCurrentIndex(export.format.findData("openai"))     # OpenAI files are JSONL
    assert export.file_type.currentData() == ".jsonl" and export.path.text().endswith("preferences.jsonl")
    export.format.setCurrentIndex(export.format.findData("conversational"))
    export.file_type.setCurrentIndex(export.file_type.findData(".parquet"))
    with qtbot.waitSignal(export.export_ended, timeout=60_000) as blocker:
        export.start_export()
    qtbot.waitUntil(lambda: not running_workers(), timeout=5_000)
    assert blocker.args[0].written == 3
    table = pq.read_table(tmp_path / "preferences.parquet").to_pylist()
    assert table[0]["prompt"] == [{"role": "user", "content": table[0]["prompt"][0]["content"]}]
    export.grab().save(str(tmp_path / "export-dialog.png"))
