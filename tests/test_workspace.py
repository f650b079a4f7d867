"""The workspace folder, its SQLite settings, and storing imported records (storage.ingest)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from storage.ingest import ImportRecord, IngestError, import_records, prompt_hash, render_messages
from storage.migrations import SCHEMA_VERSION
from storage.models import Annotator, Choice, Pair, Prompt, Response, ResponseOrigin, Verdict
from storage.settings import update_settings
from storage.splits import display_swapped_for, split_for
from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


def _counts(ws: Workspace) -> dict[str, int]:
    with ws.session() as s:
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                for model in (Prompt, Response, Pair, Verdict, Annotator)}


def test_new_folder_becomes_workspace_with_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    root = tmp_path / "new" / "ws"
    with Workspace.open(root) as ws:
        assert (root / "studio.db").is_file() and (root / "runs").is_dir() and (root / "exports").is_dir()
        with ws.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION


def test_non_empty_folder_without_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.open(tmp_path)
    assert not (tmp_path / "studio.db").exists()


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    Workspace.open(tmp_path / "ws").close()
    db = tmp_path / "ws" / "studio.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    newer = rf"newer DPO Studio .*schema version {SCHEMA_VERSION + 1}; this build understands up to {SCHEMA_VERSION}\)"
    with pytest.raises(SchemaTooNewError, match=newer):
        Workspace.open(tmp_path / "ws")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_labelled_rows_become_pairs_with_a_pseudo_annotators_verdicts(workspace: Workspace) -> None:
    records = [ImportRecord("2+2?", ["4", "5"], chosen=0, line=1),
               ImportRecord("Capital of France?", ["Lyon", "Paris"], chosen=0, line=2)]
    summary = import_records(workspace, records, "prefs.jsonl")
    assert (summary.prompts_added, summary.responses_added, summary.pairs_added, summary.verdicts_added) == (2, 4, 2, 2)
    with workspace.session() as s:
        pseudo = s.scalars(select(Annotator)).one()
        assert pseudo.name == "prefs.jsonl" and pseudo.is_pseudo
        for pair in s.scalars(select(Pair).order_by(Pair.id)):
            verdict = s.scalars(select(Verdict).where(Verdict.pair_id == pair.id)).one()
            chosen = pair.response_a if verdict.choice == Choice.A else pair.response_b
            assert chosen.text in {"4", "Lyon"}  # the row's chosen, whichever id it got
            assert pair.source == "prefs.jsonl" and pair.judged_count == 1
            assert pair.response_a_id < pair.response_b_id
            assert chosen.origin == ResponseOrigin.IMPORTED


def test_reimport_changes_nothing_and_counts_duplicates(workspace: Workspace) -> None:
    records = [ImportRecord("q", ["x", "y"], chosen=0, line=1), ImportRecord("r", ["x", "y", "z"], line=2)]
    import_records(workspace, records, "f.jsonl")
    before = _counts(workspace)
    again = import_records(workspace, records, "f.jsonl")
    assert _counts(workspace) == before
    assert (again.prompts_added, again.responses_added, again.pairs_added, again.verdicts_added) == (0, 0, 0, 0)
    assert again.duplicates == 2


def test_a_second_file_with_the_same_pair_adds_only_its_verdict(workspace: Workspace) -> None:
    import_records(workspace, [ImportRecord("q", ["x", "y"], chosen=0)], "one.jsonl")
    summary = import_records(workspace, [ImportRecord("q", ["y", "x"], chosen=0)], "two.jsonl")
    assert (summary.pairs_added, summary.verdicts_added) == (0, 1)
    with workspace.session() as s:
        pair = s.scalars(select(Pair)).one()
        choices = sorted(v.choice.value for v in s.scalars(select(Verdict)))
        assert choices == ["a", "b"] and pair.judged_count == 2


def test_candidates_make_every_pair_and_duplicates_within_a_file_are_stored_once(workspace: Workspace) -> None:
    summary = import_records(workspace, [ImportRecord("p", ["r1", "r2", "r3", "r4"], line=1),
                                         ImportRecord("p", ["r2", "r1"], line=2)], "c.jsonl")
    assert summary.pairs_added == 6 and summary.responses_added == 4 and summary.prompts_added == 1
    assert summary.duplicates == 1 and summary.verdicts_added == 0


def test_chat_prompts_keep_messages_and_a_readable_text(workspace: Workspace) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    import_records(workspace, [ImportRecord(messages, [[{"role": "assistant", "content": "Hello."}],
                                                       [{"role": "assistant", "content": "Go away."}]], chosen=0)], "c")
    # A text prompt with the same words is a different prompt (it would be templated differently).
    import_records(workspace, [ImportRecord("Hi?", ["Hello.", "Go away."])], "t")
    with workspace.session() as s:
        chat = s.scalars(select(Prompt).where(Prompt.messages_json.is_not(None))).one()
        assert chat.messages == messages and chat.text == "System: Be brief.\n\nUser: Hi?"
        assert chat.text == render_messages(messages) and chat.hash == prompt_hash(messages)
        assert s.scalar(select(func.count()).select_from(Prompt)) == 2
        reply = s.scalars(select(Response).where(Response.prompt_id == chat.id, Response.text == "Hello.")).one()
        assert reply.messages_json is not None


def test_split_and_side_are_drawn_from_sorted_hashes(workspace: Workspace) -> None:
    update_settings(workspace, eval_fraction=0.5)
    records = [ImportRecord(f"prompt {i}", [f"good {i}", f"bad {i}"], chosen=0) for i in range(200)]
    import_records(workspace, records, "f")
    with workspace.session() as s:
        pairs = s.scalars(select(Pair)).all()
        for pair in pairs:
            low, high = sorted((pair.response_a.hash, pair.response_b.hash))
            assert pair.split == split_for(pair.prompt.hash, low, high, 0.5)
            assert pair.display_swapped == display_swapped_for(pair.prompt.hash, low, high)
        evals = sum(p.split == "eval" for p in pairs)
        swapped = sum(p.display_swapped for p in pairs)
    assert 60 < evals < 140 and 60 < swapped < 140


def test_generated_responses_record_their_model(workspace: Workspace) -> None:
    import_records(workspace, [ImportRecord("p", ["one", "two"])], "generated",
                   origin=ResponseOrigin.GENERATED, model_name="tiny-llama+lora")
    with workspace.session() as s:
        assert {(r.origin, r.model_name) for r in s.scalars(select(Response))} == {
            (ResponseOrigin.GENERATED, "tiny-llama+lora")}


@pytest.mark.parametrize("record, field", [
    (ImportRecord("p", ["only one"], line=7), "responses"),
    (ImportRecord("p", ["same", "other", "same"], line=7), "responses[2]"),
    (ImportRecord("p", ["x", "y", "z"], chosen=0, line=7), "chosen"),
])
def test_bad_record_fails_whole_import_naming_line_and_field(workspace: Workspace, record, field) -> None:
    good = ImportRecord("fine", ["a", "b"], chosen=0, line=1)
    with pytest.raises(IngestError) as caught:
        import_records(workspace, [good, record], "bad.jsonl")
    assert str(caught.value).startswith(f"bad.jsonl:7: field '{field}': ")
    assert _counts(workspace) == {"prompts": 0, "responses": 0, "pairs": 0, "verdicts": 0, "annotators": 0}


def test_import_runs_in_one_transaction_so_a_database_error_writes_nothing(workspace: Workspace) -> None:
    class Boom(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done >= total // 2:
            raise Boom  # after prompts and responses were inserted

    with pytest.raises(Boom):
        import_records(workspace, [ImportRecord(f"p{i}", ["a", "b"], chosen=0) for i in range(10)], "f", progress)
    assert _counts(workspace)["prompts"] == 0 and _counts(workspace)["annotators"] == 0


def test_a_split_given_by_the_file_wins_over_the_drawn_one(workspace: Workspace) -> None:
    import_records(workspace, [ImportRecord(f"p{i}", ["a", "b"], chosen=0, split="eval") for i in range(20)], "f")
    with workspace.session() as s:
        assert {p.split for p in s.scalars(select(Pair))} == {"eval"}
    with pytest.raises(IngestError, match="field 'split'"):
        import_records(workspace, [ImportRecord("q", ["a", "b"], split="dev")], "f")
