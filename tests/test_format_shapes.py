"""Every shape people have on disk, built here, imported with the right counts, auto-detected
and named; a second import changes nothing. Parquet, Arrow and dataset folders via pyarrow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core.formats import FormatError, read_preference_file
from core.operations.data import InputRefused, import_file, workspace_stats
from storage.ingest import source_metadata
from storage.models import Verdict
from storage.workspace import Workspace


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def counts(ws: Workspace) -> tuple[int, int, int]:
    stats = workspace_stats(ws)
    return stats.prompts, stats.pairs, stats.verdicts


def import_twice(ws: Workspace, path: Path, expected: tuple[int, int, int], shape: str, **kw):
    """Import: the detected shape and (prompts, pairs, verdicts); again: nothing new."""
    report = import_file(ws, path, **kw)
    assert report.description.startswith(f"{shape} rows in ") and "(detected)" in report.description
    assert counts(ws) == expected
    again = import_file(ws, path, **kw)
    assert (again.prompts_added, again.responses_added, again.pairs_added, again.verdicts_added) == (0, 0, 0, 0)
    assert counts(ws) == expected
    return report


def turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def h4_row(i: int) -> dict:
    question = f"What is {i} + {i}?"
    return {"prompt": question, "prompt_id": f"id{i}",
            "chosen": [turn("user", question), turn("assistant", f"It is {2 * i}.")],
            "rejected": [turn("user", question), turn("assistant", "No idea.")],
            "messages": [turn("user", question), turn("assistant", f"It is {2 * i}.")],
            "score_chosen": 8.5, "score_rejected": 3.0 + i}


def test_ultrafeedback_h4_keeps_scores_and_is_the_same_data_as_trl_libs_copy(workspace, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ultrafeedback.jsonl", [h4_row(i) for i in range(6)])
    report = import_twice(workspace, path, (6, 6, 6), "ultrafeedback")
    assert "UltraFeedback" in report.description
    with workspace.session() as s:
        notes = s.scalars(select(Verdict.note).order_by(Verdict.id)).all()
    assert [source_metadata(n) for n in notes] == [{"score_chosen": 8.5, "score_rejected": 3.0 + i} for i in range(6)]
    # trl-lib/ultrafeedback_binarized: the same conversations without a prompt field (implicit).
    trl_lib = write_jsonl(tmp_path / "trl-lib.jsonl", [{k: h4_row(i)[k] for k in ("chosen", "rejected", "score_chosen")}
                                                       for i in range(6)])
    again = import_file(workspace, trl_lib)
    assert again.description.startswith("implicit") and (again.prompts_added, again.pairs_added) == (0, 0)
    assert again.verdicts_added == 0   # the same labels are held already


def test_openai_preference_jsonl(workspace, tmp_path: Path) -> None:
    rows = [{"input": {"messages": [turn("developer", "Answer briefly."), turn("user", f"Capital {i}?")],
                       "tools": [], "parallel_tool_calls": True},
             "preferred_output": [turn("assistant", f"City {i}.")],
             "non_preferred_output": [{"role": "assistant", "content": [{"type": "text", "text": "Unsure."}]}]}
            for i in range(4)]
    report = import_twice(workspace, write_jsonl(tmp_path / "openai.jsonl", rows), (4, 4, 4), "openai")
    assert "OpenAI" in report.description
    parsed = read_preference_file(tmp_path / "openai.jsonl")
    assert parsed.records[0].prompt[0] == turn("system", "Answer briefly.")
    assert parsed.records[0].responses[1] == [turn("assistant", "Unsure.")]


ARGILLA_NESTED = [
    {"id": "r1", "_server_id": "s1", "status": "completed", "vectors": {}, "metadata": {}, "suggestions": {},
     "fields": {"prompt": "Name a fruit", "response1": "apple", "response2": "rock", "response3": "pear"},
     "responses": {"ranking": [{"value": ["response3", "response1", "response2"], "user_id": "u1",
                                "status": "submitted"}]}},
    {"id": "r2", "_server_id": "s2", "status": "completed", "vectors": {}, "metadata": {}, "suggestions": {},
     "fields": {"prompt": "Name a colour", "response1": "blue", "response2": "loud"},
     "responses": {"preferred": [{"value": "response1", "user_id": "u1", "status": "submitted"}]}},
    {"id": "r3", "_server_id": "s3", "status": "pending", "vectors": {}, "metadata": {}, "suggestions": {},
     "fields": {"prompt": "Name a tree", "response1": "oak", "response2": "fern"}, "responses": {}},
]


def test_argilla_records_with_a_ranking_a_label_or_no_answer(workspace, tmp_path: Path) -> None:
    path = tmp_path / "argilla.json"
    path.write_text(json.dumps(ARGILLA_NESTED), encoding="utf-8")
    # Fruit: a ranking of 3 makes 3 labelled pairs; colour: a label, 1 pair; tree: unanswered, 1 pair to label.
    report = import_twice(workspace, path, (3, 5, 4), "argilla")
    assert "Argilla" in report.description
    fruit = [r for r in read_preference_file(path).records if r.prompt == "Name a fruit"]
    assert [(r.responses, r.chosen) for r in fruit] == [(["apple", "rock"], 0), (["pear", "apple"], 0),
                                                        (["pear", "rock"], 0)]


def test_argilla_flat_datasets_export_with_ratings_in_parquet(workspace, tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "status": "completed", "instruction": f"Write line {i}",
             "generation-1": f"A fine line {i}.", "generation-2": f"bad {i}",
             "generation-1-rating.responses": [4], "generation-1-rating.responses.users": ["u1"],
             "generation-1-rating.responses.status": ["submitted"],
             "generation-2-rating.responses": [2], "generation-2-rating.responses.users": ["u1"],
             "generation-2-rating.responses.status": ["submitted"]} for i in range(3)]
    path = write_parquet(tmp_path / "argilla.parquet", rows)
    report = import_twice(workspace, path, (3, 3, 3), "argilla")
    assert "rows in Parquet" in report.description
    record = read_preference_file(path).records[0]
    assert record.responses == ["A fine line 0.", "bad 0"] and record.chosen == 0
    assert record.metadata == {"generation-1-rating": 4, "generation-2-rating": 2}


def test_argilla_1x_feedback_dataset_on_the_hub(workspace, tmp_path: Path) -> None:
    rows = [{"prompt": f"Greet {i}", "response-1": "Hello!", "response-2": "Go away.",
             "preference": {"user_id": ["u1"], "value": [[{"value": "response-2", "rank": 1},
                                                          {"value": "response-1", "rank": 2}]],
                            "status": ["submitted"]},
             "preference-suggestion": None, "external_id": f"e{i}", "metadata": "{}"} for i in range(2)]
    path = write_jsonl(tmp_path / "feedback.jsonl", rows)
    import_twice(workspace, path, (2, 2, 2), "argilla")
    assert read_preference_file(path).records[0].responses == ["Go away.", "Hello!"]


def test_label_studio_pairwise_export(workspace, tmp_path: Path) -> None:
    def task(i: int, selected: str | None, cancelled: bool = False) -> dict:
        result = [] if selected is None else [{"id": "x", "type": "pairwise", "from_name": "comparison",
                                               "to_name": "comparison", "value": {"selected": selected}}]
        return {"id": i, "data": {"prompt": f"Summarise {i}", "answer1": f"Short {i}.", "answer2": f"Long {i}..."},
                "annotations": [{"id": i, "completed_by": 1, "result": result, "was_cancelled": cancelled}],
                "predictions": []}

    path = tmp_path / "label-studio.json"
    path.write_text(json.dumps([task(1, "left"), task(2, "right"), task(3, "left", cancelled=True), task(4, None)]),
                    encoding="utf-8")
    report = import_twice(workspace, path, (4, 4, 2), "labelstudio")
    assert "Label Studio" in report.description
    records = read_preference_file(path).records
    assert [(r.responses, r.chosen) for r in records[:2]] == [(["Short 1.", "Long 1..."], 0),
                                                              (["Long 2...", "Short 2."], 0)]
    assert records[2].chosen is None and records[3].chosen is None


def test_numbered_response_columns_in_jsonl(workspace, tmp_path: Path) -> None:
    rows = [{"prompt": f"Pick {i}", "response_1": "one", "response_2": "two", "response_3": None if i else "three"}
            for i in range(3)]
    import_twice(workspace, write_jsonl(tmp_path / "numbered.jsonl", rows), (3, 5, 0), "candidates")


STANDARD = [{"prompt": f"Q{i}?", "chosen": f"Good {i}.", "rejected": f"Bad {i}."} for i in range(10)]


def test_parquet_and_arrow_files(workspace, tmp_path: Path) -> None:
    import pyarrow as pa

    import_twice(workspace, write_parquet(tmp_path / "prefs.parquet", STANDARD[:5]), (5, 5, 5), "standard")
    table = pa.Table.from_pylist(STANDARD[5:])
    with pa.OSFile(str(tmp_path / "prefs.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    report = import_twice(workspace, tmp_path / "prefs.arrow", (10, 10, 10), "standard")
    assert "rows in Arrow" in report.description


def test_save_to_disk_folders_and_parquet_shards(workspace, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    Dataset.from_list(STANDARD[:4]).save_to_disk(str(tmp_path / "saved"))
    report = import_twice(workspace, tmp_path / "saved", (4, 4, 4), "standard")
    assert "a datasets folder" in report.description
    DatasetDict({"train": Dataset.from_list(STANDARD[4:7]), "test": Dataset.from_list(STANDARD[7:])}).save_to_disk(
        str(tmp_path / "splits"))
    report = import_twice(workspace, tmp_path / "splits", (10, 10, 10), "standard")
    assert report.pairs_by_split == {"train": 3, "eval": 3}   # the DatasetDict's splits

    shards = tmp_path / "hub" / "data"
    shards.mkdir(parents=True)
    conversational = [{"prompt": [turn("user", f"Hey {i}")], "chosen": [turn("assistant", f"Hi {i}!")],
                       "rejected": [turn("assistant", "...")]} for i in range(6)]
    write_parquet(shards / "train_prefs-00000-of-00002.parquet", conversational[:2])
    write_parquet(shards / "train_prefs-00001-of-00002.parquet", conversational[2:4])
    write_parquet(shards / "test_prefs-00000-of-00001.parquet", conversational[4:])
    report = import_twice(workspace, tmp_path / "hub", (16, 16, 16), "conversational")
    assert "a folder of 3 Parquet files" in report.description and report.pairs_by_split == {"eval": 2, "train": 4}


def test_a_bad_row_in_a_shard_names_the_shard_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    write_parquet(folder / "a.parquet", STANDARD[:3])
    write_parquet(folder / "b.parquet", STANDARD[:2] + [{"prompt": "p", "chosen": "x", "rejected": "x"}])
    with pytest.raises(FormatError) as caught:
        read_preference_file(folder)
    assert str(caught.value).startswith(f"{folder / 'b.parquet'}: row 3: field 'rejected': same as 'chosen'")


def test_without_pyarrow_parquet_is_refused_with_the_install_command(tmp_path: Path, monkeypatch) -> None:
    path = write_parquet(tmp_path / "prefs.parquet", STANDARD)
    monkeypatch.setitem(sys.modules, "pyarrow", None)   # import pyarrow raises ImportError
    with pytest.raises(InputRefused) as caught:
        import_file(tmp_path / "ws", path)
    assert str(caught.value) == f'{path}: Parquet and Arrow files need pyarrow, which is not installed: ' \
                                'pip install -e ".[parquet]"'
    assert not (tmp_path / "ws").exists()


def test_an_unknown_shape_lists_the_fields_the_nearest_shape_and_the_format_to_try(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "qa.jsonl", [{"prompt": "q", "good": "a", "chosen": "b"}])
    with pytest.raises(FormatError) as caught:
        read_preference_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: cannot tell the format from fields ['chosen', 'good', 'prompt']")
    assert "the nearest shape is standard" in message and "lacks rejected" in message
    assert "try --format standard" in message


def test_a_bad_item_of_a_json_array_is_named(tmp_path: Path) -> None:
    path = tmp_path / "one-line.json"
    path.write_text(json.dumps(STANDARD[:1] + [{"prompt": "p", "chosen": 3, "rejected": "b"}] + STANDARD[1:]))
    with pytest.raises(FormatError) as caught:
        read_preference_file(path)
    assert str(caught.value) == f"{path}: item 2 (line 1): field 'chosen': expected a string, got a number"
    assert (caught.value.item, caught.value.line, caught.value.field) == (2, 1, "chosen")


def test_skip_bad_rows_imports_the_good_ones_and_reports_the_bad(workspace, tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in STANDARD[:3]] + ['{"prompt": "p", "chosen": "x"}', "{not json",
                                                      json.dumps(STANDARD[3]), '{"prompt": "q", "chosen": 1, "rejected": "b"}']
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputRefused, match=r"mixed.jsonl:4: field 'rejected': missing"):
        import_file(workspace, path)   # all or nothing stays the default
    assert counts(workspace) == (0, 0, 0)
    report = import_file(workspace, path, skip_bad_rows=True)
    assert (report.rows, report.pairs_added, report.skipped_rows) == (4, 4, 3)
    listed = Path(report.bad_rows_report)
    assert listed.parent == workspace.exports_dir and listed.name.startswith("mixed-bad-rows-")
    assert listed.read_text(encoding="utf-8").splitlines()[1:] == [
        f"{path}:4:rejected: missing", f"{path}:5:: invalid JSON: Expecting property name enclosed in double "
        "quotes (column 2)", f"{path}:7:chosen: expected a string, got a number"]
    # A JSON array's item is named after the message.
    array = tmp_path / "array.json"
    array.write_text(json.dumps([STANDARD[4], {"prompt": "p"}]))
    report = import_file(workspace, array, skip_bad_rows=True)
    assert Path(report.bad_rows_report).read_text().splitlines()[1] == f"{array}:1:chosen: missing (item 2)"


def test_a_prompt_and_a_response_are_found_whether_they_come_as_text_or_as_chat(workspace, tmp_path: Path) -> None:
    import_file(workspace, write_jsonl(tmp_path / "text.jsonl", STANDARD[:3]))
    as_chat = [{"prompt": [turn("user", r["prompt"])], "chosen": [turn("assistant", r["chosen"])],
                "rejected": [turn("assistant", r["rejected"])]} for r in STANDARD[:3]]
    report = import_file(workspace, write_jsonl(tmp_path / "chat.jsonl", as_chat))
    assert (report.prompts_added, report.responses_added, report.pairs_added, report.verdicts_added) == (0, 0, 0, 0)
    # A chat prompt of several turns, then its text rendering (what the TRL export writes).
    talk = [turn("system", "Be brief."), turn("user", "Hi"), turn("assistant", "Hello."), turn("user", "Weather?")]
    import_file(workspace, write_jsonl(tmp_path / "talk.jsonl", [{"prompt": talk, "chosen": [turn("assistant", "Sunny.")],
                                                                  "rejected": [turn("assistant", "Dunno.")]}]))
    rendered = "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello.\n\nUser: Weather?"
    report = import_file(workspace, write_jsonl(tmp_path / "flat.jsonl", [{"prompt": rendered, "chosen": "Sunny.",
                                                                           "rejected": "Dunno."}]))
    assert (report.prompts_added, report.pairs_added, report.verdicts_added) == (0, 0, 0)
    assert counts(workspace) == (4, 4, 4)


def test_a_file_without_a_good_row_is_refused_even_when_skipping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "junk.jsonl", [{"x": 1}, {"y": 2}])
    with pytest.raises(InputRefused) as caught:
        import_file(tmp_path / "ws", path, skip_bad_rows=True)
    assert "no field of a known shape" in str(caught.value) and "no row of the file is good (2 bad)" in str(caught.value)
    assert not (tmp_path / "ws").exists()
