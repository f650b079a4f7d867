"""Files in, training set out: export files load in `datasets` with the columns TRL's
DPOTrainer expects, and export -> re-import round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.formats import read_preference_file, write_preference_file
from storage.annotation_queue import AnnotationQueue
from storage.ingest import import_records
from storage.models import Choice
from storage.settings import update_settings
from storage.training_set import build_training_set
from storage.workspace import Workspace

STANDARD = [{"prompt": f"Question {i}: how do I cook rice?", "chosen": f"Rinse it, then simmer {i} min.",
             "rejected": "No." + "!" * i} for i in range(30)]
CHAT = [{"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"Hi {i}"}],
         "chosen": [{"role": "assistant", "content": f"Hello {i}!"}],
         "rejected": [{"role": "assistant", "content": "Go away."}]} for i in range(10)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def import_file(ws: Workspace, path: Path):
    return import_records(ws, read_preference_file(path).records, path.name, match_forms=True)


@pytest.fixture
def filled(workspace: Workspace, tmp_path: Path) -> Workspace:
    update_settings(workspace, eval_fraction=0.25)
    import_file(workspace, write_jsonl(tmp_path / "standard.jsonl", STANDARD))
    import_file(workspace, write_jsonl(tmp_path / "chat.jsonl", CHAT))
    candidates = write_jsonl(tmp_path / "cands.jsonl", [{"prompt": "Name a colour", "responses": ["red", "blue", "green"]}])
    import_file(workspace, candidates)
    queue = AnnotationQueue(workspace, "ann")
    for choice in (Choice.A, Choice.B, Choice.TIE):  # two of the three candidate pairs become examples
        queue.record(queue.next_pair().pair_id, choice)
    return workspace


def test_trl_export_loads_in_datasets_as_string_columns(filled: Workspace, tmp_path: Path) -> None:
    from datasets import Value, load_dataset

    out = tmp_path / "train.jsonl"
    written = write_preference_file(out, build_training_set(filled).examples, "trl")
    assert written == 42
    dataset = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == 42
    assert dataset.features == {"prompt": Value("string"), "chosen": Value("string"),
                                "rejected": Value("string"), "split": Value("string")}
    assert set(dataset["split"]) == {"train", "eval"}
    chat_row = next(r for r in dataset if r["chosen"] == "Hello 3!")
    assert chat_row["prompt"] == "System: Be kind.\n\nUser: Hi 3" and chat_row["rejected"] == "Go away."


def test_conversational_export_is_what_trl_applies_its_chat_template_to(filled: Workspace, tmp_path: Path) -> None:
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from tests.tiny_models import make_tokenizer

    out = tmp_path / "chat.jsonl"
    train_only = [e for e in build_training_set(filled).examples if e.split == "train"]
    write_preference_file(out, train_only, "conversational", include_split=False)
    dataset = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected"} and dataset.num_rows == len(train_only)
    tokenizer = make_tokenizer()
    for row in dataset:
        assert is_conversational(row)
        assert all(set(m) == {"role", "content"} for m in row["prompt"] + row["chosen"] + row["rejected"])
        assert [m["role"] for m in row["chosen"]] == ["assistant"]
        templated = maybe_apply_chat_template(row, tokenizer)
        assert templated["prompt"].endswith("<|im_start|>assistant\n")
        assert templated["chosen"].startswith(row["chosen"][0]["content"])


def test_export_then_reimport_round_trips(filled: Workspace, tmp_path: Path) -> None:
    for fmt in ("trl", "conversational"):
        first = tmp_path / f"first-{fmt}.jsonl"
        write_preference_file(first, build_training_set(filled).examples, fmt)
        with Workspace.open(tmp_path / f"copy-{fmt}") as copy:
            update_settings(copy, eval_fraction=0.25)
            parsed = read_preference_file(first)
            assert parsed.format == {"trl": "standard", "conversational": "conversational"}[fmt]
            summary = import_file(copy, first)
            assert summary.pairs_added == 42 and summary.verdicts_added == 42
            second = tmp_path / f"second-{fmt}.jsonl"
            write_preference_file(second, build_training_set(copy).examples, fmt)
        # Same rows, same order, same split: the split is drawn from content hashes, not ids.
        assert second.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")


def test_reimporting_an_export_into_its_own_workspace_adds_no_pairs(filled: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "back.jsonl"
    write_preference_file(out, build_training_set(filled).examples, "trl")
    summary = import_file(filled, write_jsonl(tmp_path / "standard.jsonl", STANDARD))
    assert summary.pairs_added == 0 and summary.duplicates == 30
    summary = import_file(filled, out)
    # Chat prompts flattened to text are found as the chat prompts they are, and every label the
    # file carries is one the workspace holds already (whoever gave it): nothing is new.
    assert (summary.prompts_added, summary.responses_added, summary.pairs_added, summary.verdicts_added) == (0, 0, 0, 0)
    assert summary.duplicates == 42


def test_export_is_written_whole_or_not_at_all(filled: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text("old contents\n")
    examples = build_training_set(filled).examples

    def broken():
        yield examples[0]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_preference_file(out, broken(), "trl")
    assert out.read_text() == "old contents\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]  # no temporary left behind
    with pytest.raises(ValueError, match="unknown export format 'kto'"):
        write_preference_file(out, examples, "kto")


EXPORTS = [("trl", "jsonl"), ("conversational", "jsonl"), ("openai", "jsonl"), ("trl", "parquet"),
           ("conversational", "parquet")]


@pytest.mark.parametrize("fmt, suffix", EXPORTS)
def test_every_export_reimported_into_its_own_workspace_adds_nothing(filled: Workspace, tmp_path: Path, fmt: str,
                                                                      suffix: str) -> None:
    from core.operations.data import export_training_data, import_file as import_operation, workspace_stats

    before = workspace_stats(filled).to_dict()
    out = tmp_path / f"mine.{suffix}"
    assert export_training_data(filled, out, fmt).written == 42
    report = import_operation(filled, out)
    assert (report.prompts_added, report.responses_added, report.pairs_added, report.verdicts_added) == (0, 0, 0, 0)
    assert report.duplicates == 42
    after = workspace_stats(filled).to_dict()
    assert after == before   # no new pseudo-annotator either
    # Renamed, the same file is still nothing new: the labels are known by pair and choice, not by file name.
    renamed = out.rename(tmp_path / f"renamed.{suffix}")
    assert import_operation(filled, renamed).verdicts_added == 0


@pytest.mark.parametrize("fmt, suffix", EXPORTS)
def test_every_export_round_trips_through_a_new_workspace(filled: Workspace, tmp_path: Path, fmt: str,
                                                          suffix: str) -> None:
    from core.operations.data import export_training_data, import_file as import_operation

    first = tmp_path / f"first.{suffix}"
    export_training_data(filled, first, fmt)
    with Workspace.open(tmp_path / "copy") as copy:
        update_settings(copy, eval_fraction=0.25)
        report = import_operation(copy, first)
        assert (report.pairs_added, report.verdicts_added) == (42, 42)
        second = tmp_path / f"second.{suffix}"
        export_training_data(copy, second, fmt)
    if suffix == "jsonl":
        assert second.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(second).to_pylist() == pq.read_table(first).to_pylist()


def test_parquet_export_loads_in_datasets_and_openai_rows_have_only_openais_fields(filled: Workspace,
                                                                                     tmp_path: Path) -> None:
    from datasets import Value, load_dataset

    from core.operations.data import InputRefused, export_training_data

    export_training_data(filled, tmp_path / "train.parquet", "trl")
    dataset = load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train",
                           cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == 42 and dataset.features["chosen"] == Value("string")
    export_training_data(filled, tmp_path / "openai.jsonl", "openai")
    rows = [json.loads(line) for line in (tmp_path / "openai.jsonl").read_text().splitlines()]
    assert all(set(r) == {"input", "preferred_output", "non_preferred_output"} and set(r["input"]) == {"messages"}
               for r in rows)
    assert rows[0]["input"]["messages"][-1]["role"] == "user"
    with pytest.raises(InputRefused, match="OpenAI preference files are JSONL"):
        export_training_data(filled, tmp_path / "openai.parquet", "openai")
    assert not (tmp_path / "openai.parquet").exists()
