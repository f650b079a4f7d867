"""core.operations.data: import, export and stats as plain functions — reports, progress,
cancelling, refusals, and what each says changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.formats import EXPORT_FORMATS
from core.operations.data import (EXPORT_SPLITS, CancelFlag, Cancelled, InputRefused, Stage, export_training_data,
                                  import_file, workspace_stats)
from gui.data.export_dialog import FORMAT_LABELS, SPLIT_LABELS
from storage.annotation_queue import AnnotationQueue
from storage.models import Annotator, Choice, Pair, Prompt, Response, Verdict
from storage.training_set import POLICIES, POLICY_LABELS
from storage.workspace import Workspace

ROWS = [{"prompt": f"Question {i}?", "chosen": f"Good {i}.", "rejected": f"Bad {i}."} for i in range(200)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def counts(ws: Workspace) -> tuple[int, ...]:
    with ws.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Prompt, Response, Pair, Verdict, Annotator))


def test_import_reports_counts_splits_progress_and_changes(workspace: Workspace, tmp_path: Path) -> None:
    seen = []
    report = import_file(workspace, write_jsonl(tmp_path / "prefs.jsonl", ROWS), progress=seen.append)
    assert (report.rows, report.pairs_added, report.verdicts_added, report.duplicates) == (200, 200, 200, 0)
    assert (report.prompts_added, report.responses_added, report.source) == (200, 400, "prefs.jsonl")
    assert sum(report.pairs_by_split.values()) == 200 and set(report.pairs_by_split) <= {"train", "eval"}
    with workspace.session() as s:
        stored = dict(s.execute(select(Pair.split, func.count()).group_by(Pair.split)).all())
    assert report.pairs_by_split == stored
    assert {p.stage for p in seen} == {Stage.READING, Stage.STORING} and seen[-1].done == seen[-1].total
    assert report.changes.pairs and report.changes.verdicts and len(report.changes.pair_ids) == 200
    assert report.description == "standard rows in JSONL (detected)"

    again = import_file(workspace, tmp_path / "prefs.jsonl")
    assert (again.pairs_added, again.duplicates) == (0, 200) and not again.changes


def test_unlabelled_import_changes_pairs_only(workspace: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "responses": ["a", "b", "c"]}])
    report = import_file(workspace, path, "candidates", source=" round-1 ")
    assert report.pairs_added == 3 and report.source == "round-1"
    assert report.changes.pairs and not report.changes.verdicts


def test_a_refused_file_writes_nothing_and_names_line_and_field(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ROWS[:5] + [{"prompt": "p", "chosen": "x"}])
    with pytest.raises(InputRefused) as caught:
        import_file(tmp_path / "new-ws", bad)
    assert (caught.value.line, caught.value.field, caught.value.message) == (6, "rejected", "missing")
    assert str(caught.value) == f"{bad}:6: field 'rejected': missing"
    assert not (tmp_path / "new-ws").exists()      # a location is opened only once the file reads cleanly
    with pytest.raises(InputRefused, match="unknown format 'kto'"):
        import_file(tmp_path / "new-ws", bad, "kto")


def test_a_cancelled_import_writes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prefs.jsonl", ROWS)
    flag = CancelFlag()

    def cancel_while_storing(progress) -> None:
        if progress.stage is Stage.STORING and progress.done == progress.total:
            flag.cancel()       # at the very last report, inside the transaction

    with pytest.raises(Cancelled):
        import_file(workspace, path, progress=cancel_while_storing, cancelled=flag)
    assert counts(workspace) == (0, 0, 0, 0, 0)
    with pytest.raises(Cancelled):
        import_file(workspace, path, cancelled=lambda: True)   # while reading
    assert counts(workspace) == (0, 0, 0, 0, 0)


@pytest.fixture
def judged(workspace: Workspace, tmp_path: Path) -> Workspace:
    import_file(workspace, write_jsonl(tmp_path / "prefs.jsonl", ROWS[:20]))
    queue = AnnotationQueue(workspace, "ann", overlap=2)
    for pair_id, choice in ((1, Choice.B), (2, Choice.A), (3, Choice.TIE)):
        queue.record(pair_id, choice)
    return workspace


def test_export_reports_what_it_wrote_and_changes_nothing(judged: Workspace, tmp_path: Path) -> None:
    seen = []
    report = export_training_data(judged, tmp_path / "out.jsonl", progress=seen.append)
    rows = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert report.written == len(rows) == 18 and report.train + report.eval == 18   # 1 and 3 are 1-1 draws
    assert report.dropped["no_majority"] == 2 and not report.changes
    assert {p.stage for p in seen} == {Stage.BUILDING, Stage.WRITING}
    only_eval = export_training_data(judged, tmp_path / "eval.jsonl", "conversational", "all", "eval")
    assert only_eval.written == only_eval.eval and "split" not in (tmp_path / "eval.jsonl").read_text()


def test_export_refusals_and_cancel_leave_no_file(judged: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="no such folder"):
        export_training_data(judged, tmp_path / "nowhere" / "out.jsonl")
    for bad in ({"format": "kto"}, {"policy": "loudest"}, {"split": "test"}):
        with pytest.raises(InputRefused, match="unknown"):
            export_training_data(judged, tmp_path / "out.jsonl", **bad)
    out = tmp_path / "out.jsonl"
    out.write_text("the previous export\n", encoding="utf-8")

    def cancel_while_writing(progress) -> None:
        if progress.stage is Stage.WRITING and progress.done:
            flag.cancel()

    flag = CancelFlag()
    with pytest.raises(Cancelled):
        export_training_data(judged, out, progress=cancel_while_writing, cancelled=flag)
    assert out.read_text(encoding="utf-8") == "the previous export\n"      # untouched: whole or not at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "prefs.jsonl", "ws"]


def test_stats_by_location_and_by_workspace_agree(judged: Workspace) -> None:
    by_object, by_location = workspace_stats(judged), workspace_stats(judged.location)
    assert by_object == by_location
    assert (by_object.prompts, by_object.pairs, by_object.pairs_judged, by_object.verdicts) == (20, 20, 20, 23)
    assert sum(by_object.pairs_by_split.values()) == 20
    assert by_object.to_dict()["verdicts_by_choice"]["tie"] == 1


def test_choice_lists_are_defined_once() -> None:
    assert tuple(POLICY_LABELS) == POLICIES == ("majority", "unanimous", "all")
    assert tuple(FORMAT_LABELS) == EXPORT_FORMATS and tuple(SPLIT_LABELS) == EXPORT_SPLITS
