"""The data commands end to end: `import`, `export`, `stats` (exit codes, messages, files)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from core.cli.progress import ProgressBar
from storage.annotation_queue import AnnotationQueue
from storage.models import Choice
from storage.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{"prompt": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}."} for i in range(40)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_import_reports_format_and_counts_and_is_idempotent(tmp_path: Path, capsys) -> None:
    data = write_jsonl(tmp_path / "prefs.jsonl", ROWS)
    assert main.main(["import", str(tmp_path / "ws"), str(data)]) == 0
    out = capsys.readouterr().out
    assert "prefs.jsonl: 40 standard rows in JSONL (detected)" in out
    assert "added 40 pairs (40 prompts, 80 responses, 40 verdicts); skipped 0 duplicate rows" in out
    assert main.main(["import", str(tmp_path / "ws"), str(data), "--format", "trl"]) == 0
    out = capsys.readouterr().out
    assert "(given)" in out and "added 0 pairs" in out and "skipped 40 duplicate rows" in out


def test_bad_file_exits_2_with_file_line_field_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ROWS[:3] + [{"prompt": "p", "chosen": "x"}] + ROWS[3:])
    assert main.main(["import", str(tmp_path / "new-ws"), str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"{bad}:4: field 'rejected': missing"
    assert not (tmp_path / "new-ws").exists()  # not even the workspace folder was created
    # Into an existing workspace: nothing of the bad file arrives.
    main.main(["import", str(tmp_path / "ws"), str(write_jsonl(tmp_path / "ok.jsonl", ROWS[:5]))])
    assert main.main(["import", str(tmp_path / "ws"), str(bad)]) == 2
    capsys.readouterr()
    assert main.main(["stats", str(tmp_path / "ws"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["pairs"], stats["verdicts"], [a["name"] for a in stats["annotators"]]) == (5, 5, ["ok.jsonl"])


def test_unknown_format_and_missing_file_exit_2(tmp_path: Path, capsys) -> None:
    data = write_jsonl(tmp_path / "prefs.jsonl", ROWS)
    with pytest.raises(SystemExit) as caught:
        main.main(["import", str(tmp_path / "ws"), str(data), "--format", "kto"])
    assert caught.value.code == 2 and "invalid choice: 'kto'" in capsys.readouterr().err
    assert main.main(["import", str(tmp_path / "ws"), str(tmp_path / "nope.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.csv'}: no such file"


@pytest.fixture
def judged_ws(tmp_path: Path, capsys) -> Path:
    """40 labelled pairs from a file plus a second opinion from ann (who disagrees on 2 of 4)."""
    ws_dir = tmp_path / "ws"
    main.main(["import", str(ws_dir), str(write_jsonl(tmp_path / "prefs.jsonl", ROWS))])
    with Workspace.open(ws_dir) as ws:
        queue = AnnotationQueue(ws, "ann", overlap=2)
        for choice in (Choice.A, Choice.B, Choice.B, Choice.TIE):
            view = queue.next_pair()
            queue.record(view.pair_id, choice)
    capsys.readouterr()
    return ws_dir


def test_export_formats_splits_and_policies(judged_ws: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "all.jsonl"
    assert main.main(["export", str(judged_ws), str(out)]) == 0
    rows = read_jsonl(out)
    assert set(rows[0]) == {"prompt", "chosen", "rejected", "split"}
    n_all = len(rows)
    train, evals = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    assert main.main(["export", str(judged_ws), str(train), "--split", "train"]) == 0
    assert main.main(["export", str(judged_ws), str(evals), "--split", "eval", "--format", "conversational"]) == 0
    train_rows, eval_rows = read_jsonl(train), read_jsonl(evals)
    assert len(train_rows) + len(eval_rows) == n_all and "split" not in train_rows[0]
    assert all(isinstance(r["prompt"], list) for r in eval_rows)
    assert {r["prompt"] for r in train_rows} == {r["prompt"] for r in rows if r["split"] == "train"}
    # Which pairs survive depends on the policy: the file's label vs ann's a/b/b/tie.
    counts = {}
    for policy in ("majority", "unanimous", "all"):
        path = tmp_path / f"{policy}.jsonl"
        assert main.main(["export", str(judged_ws), str(path), "--policy", policy]) == 0
        counts[policy] = len(read_jsonl(path))
    # Every file label is "a" (a row's chosen response is stored first, so it is response a);
    # ann agrees on one pair, says b on two and tie on one: those three are 1-1 draws.
    assert counts["majority"] == 37 and counts["unanimous"] == 37
    assert counts["all"] == 40 + 3                   # 40 file labels + ann's three a/b verdicts
    assert "dropped pairs/verdicts:" in capsys.readouterr().out


def test_export_refuses_a_missing_workspace(tmp_path: Path, capsys) -> None:
    assert main.main(["export", str(tmp_path / "nowhere"), str(tmp_path / "o.jsonl")]) == 2
    assert "not a DPO Studio workspace" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_stats_json(judged_ws: Path, capsys) -> None:
    assert main.main(["stats", str(judged_ws), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["prompts"], stats["responses"], stats["pairs"], stats["verdicts"]) == (40, 80, 40, 44)
    assert stats["verdicts_by_choice"]["tie"] == 1 and sum(stats["verdicts_by_choice"].values()) == 44
    names = {a["name"]: a for a in stats["annotators"]}
    assert names["ann"]["total"] == 4 and names["prefs.jsonl"]["pseudo"] and names["prefs.jsonl"]["total"] == 40
    assert stats["agreement"]["pairs_with_2_or_more"] == 0  # pseudo-annotators are not in the agreement
    assert main.main(["stats", str(judged_ws)]) == 0
    assert "40 prompts, 80 responses, 40 pairs" in capsys.readouterr().out


def test_progress_bar_draws_and_finishes_with_a_newline() -> None:
    stream = io.StringIO()
    bar = ProgressBar("reading", stream, width=10)
    bar(0, 4)
    bar(4, 4)
    assert stream.getvalue().endswith("reading [##########] 100.0%\n")


def test_real_entry_point_exits_2_without_loading_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,chosen,rejected\np,same,same\n", encoding="utf-8")
    script = ("import sys, main\ncode = main.main(sys.argv[1:])\n"
              "print('torch loaded' if 'torch' in sys.modules else 'no torch')\nsys.exit(code)")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", script, "import", str(tmp_path / "ws"), str(bad)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "no torch" in done.stdout
    assert done.stderr.strip() == f"{bad}:2: field 'rejected': same as 'chosen' (a pair needs two different responses)"
    help_text = subprocess.run([sys.executable, "main.py", "export", "--help"], cwd=ROOT, capture_output=True,
                               text=True, env=env, timeout=120).stdout
    assert "--split" in help_text and "TRL's DPOTrainer" in help_text


def test_skip_bad_rows_imports_the_rest_and_says_where_the_report_is(tmp_path: Path, capsys) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ROWS[:3] + [{"prompt": "p", "chosen": "x"}] + ROWS[3:6])
    assert main.main(["import", str(tmp_path / "ws"), str(bad)]) == 2   # all or nothing by default
    capsys.readouterr()
    assert main.main(["import", str(tmp_path / "ws"), str(bad), "--skip-bad-rows"]) == 0
    out = capsys.readouterr().out
    assert "bad.jsonl: 6 standard rows in JSONL (detected)" in out and "added 6 pairs" in out
    report = next((tmp_path / "ws" / "exports").glob("bad-bad-rows-*.txt"))
    assert f"left out 1 bad row, listed in {report}" in out
    assert report.read_text(encoding="utf-8").splitlines()[1:] == [f"{bad}:4:rejected: missing"]


def test_unknown_shape_exits_2_naming_the_nearest_shape(tmp_path: Path, capsys) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}])
    assert main.main(["import", str(tmp_path / "ws"), str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{data}:1: cannot tell the format from fields ['answer', 'question']: no field of a "
                          "known shape; the most common is standard")
    assert "try --format standard" in err and "\n" not in err
    near = write_jsonl(tmp_path / "near.jsonl", [{"prompt": "q", "answers": ["a", "b"]}])
    assert main.main(["import", str(tmp_path / "ws"), str(near)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the nearest shape is candidates" in err and "lacks responses" in err and "try --format candidates" in err


def test_export_openai_and_parquet_and_reimport_adds_nothing(judged_ws: Path, tmp_path: Path, capsys) -> None:
    import pyarrow.parquet as pq

    openai, parquet = tmp_path / "openai.jsonl", tmp_path / "set.parquet"
    assert main.main(["export", str(judged_ws), str(openai), "--format", "openai"]) == 0
    assert set(read_jsonl(openai)[0]) == {"input", "preferred_output", "non_preferred_output"}
    assert main.main(["export", str(judged_ws), str(parquet), "--format", "conversational"]) == 0
    assert pq.read_table(parquet).num_rows == 37
    for path in (openai, parquet):
        assert main.main(["import", str(judged_ws), str(path)]) == 0
        assert "added 0 pairs (0 prompts, 0 responses, 0 verdicts); skipped 37 duplicate rows" in capsys.readouterr().out
    assert main.main(["export", str(judged_ws), str(tmp_path / "o.parquet"), "--format", "openai"]) == 2
    assert "OpenAI preference files are JSONL" in capsys.readouterr().err
