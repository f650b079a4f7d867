"""Progress on a terminal and in a log: the reference pass and demo-eval draw a bar under a
pseudo-terminal (carriage-return updates), piped output holds at most a line per 10% per phase,
and --quiet silences all of it, transformers' own bars included; a long import or export
draws through the same printer, a few rows draw nothing."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.progress import ProgressBar
from storage.workspace import Workspace
from tests.tiny_models import fill_workspace, make_tiny_model_dir

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def under_terminal(argv: list[str], timeout: float = 300) -> str:
    """Run ``python main.py ARGV`` with a pseudo-terminal as stdout and stderr; all it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "main.py", *argv], cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL,
                               stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError("no output for too long: " + b"".join(chunks).decode(errors="replace")[-2000:])
        try:
            data = os.read(master, 65536)
        except OSError:   # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def piped(argv: list[str]) -> str:
    done = subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("progress")
    model = make_tiny_model_dir(root / "model")
    ws = Workspace.open(root / "ws")
    fill_workspace(ws, 48)
    ws.close()
    return root / "ws", model


def train_args(workspace, *more: str) -> list[str]:
    ws, model = workspace
    return ["train", str(ws), "--set", f"base_model={model}", "--set", "max_steps=20", "--set", "batch_size=2",
            "--set", "reference_batch_size=2", "--set", "eval_interval=0", "--set", "checkpoint_interval=0", *more]


@pytest.mark.slow   # trains or samples a model in a subprocess
def test_the_reference_pass_draws_a_bar_on_a_terminal(workspace) -> None:
    # A fresh cache per run: a different max_length is a different tokenisation key.
    text = under_terminal(train_args(workspace, "--set", "max_length=500"))
    assert re.search(r"\r\x1b\[Kreference log-probs \[[#.]+\]", text), text[-2000:]
    assert "\r\x1b[K[" in text                       # the training bar, redrawn in place
    assert "completed at step 20/20" in text


@pytest.mark.slow   # trains or samples a model in a subprocess
def test_piped_output_has_a_line_per_10_percent_and_quiet_has_none(workspace) -> None:
    text = piped(train_args(workspace, "--set", "max_length=400"))
    reference = [line for line in text.splitlines() if line.startswith("reference log-probs [")]
    steps = [line for line in text.splitlines() if re.match(r"\[[# ]*\] \d+/20", line)]
    assert 2 <= len(reference) <= 11 and 2 <= len(steps) <= 11, text
    assert "\r" not in text.replace("\r\n", "\n").split("Loading weights")[-1].split("\n", 1)[-1]
    quiet = piped(train_args(workspace, "--set", "max_length=300", "--quiet"))
    assert "reference log-probs [" not in quiet and "Loading weights" not in quiet and "/20  loss" not in quiet
    assert "completed at step 20/20" in quiet


@pytest.mark.slow   # trains or samples a model in a subprocess
def test_demo_eval_draws_a_bar_on_a_terminal(tmp_path) -> None:
    assert piped(["demo", str(tmp_path / "demo")])
    text = under_terminal(["demo-eval", str(tmp_path / "demo"), "--base-only", "--prompts", "6",
                           "--batch-size", "2"])
    assert re.search(r"\r\x1b\[Ksampling the base model \[[#.]+\]", text), text[-2000:]
    assert "100.0%" in text


def test_a_piped_bar_writes_a_line_per_10_percent() -> None:
    stream = io.StringIO()
    bar = ProgressBar("work", stream)
    for done in range(1001):
        bar(done, 1000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[-1].endswith("100.0%")
    assert ProgressBar("work", stream, quiet=True)(1, 2) is None and len(stream.getvalue().splitlines()) == 11


def _rows_file(path: Path, rows: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"question {i}?", "chosen": f"good answer {i}",
                                        "rejected": f"bad answer {i}"}) + "\n" for i in range(rows)),
                    encoding="utf-8")
    return path


def _stage_lines(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"(reading|storing|building|writing) \[[#.]+\]", line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def test_a_long_import_draws_a_bar_on_a_terminal(tmp_path) -> None:
    text = under_terminal(["import", str(tmp_path / "ws"), str(_rows_file(tmp_path / "rows.jsonl", 3000))])
    assert re.search(r"\r\x1b\[K(reading|storing) \[[#.]+\]", text), text[-2000:]
    assert "100.0%" in text and "added 3000 pairs" in text


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_piped_import_and_export_write_a_line_per_10_percent_and_quiet_none(tmp_path) -> None:
    rows = _rows_file(tmp_path / "rows.jsonl", 3000)
    imported = piped(["import", str(tmp_path / "ws"), str(rows)])
    stages = _stage_lines(imported)
    assert {"reading", "storing"} <= set(stages) and all(1 <= n <= 11 for n in stages.values()), imported
    assert "\r" not in imported
    exported = piped(["export", str(tmp_path / "ws"), str(tmp_path / "out.jsonl")])
    stages = _stage_lines(exported)
    assert "writing" in stages and all(1 <= n <= 11 for n in stages.values()), exported
    quiet = piped(["import", str(tmp_path / "ws2"), str(rows), "--quiet"]) + piped(
        ["export", str(tmp_path / "ws2"), str(tmp_path / "out2.jsonl"), "--quiet"])
    assert _stage_lines(quiet) == {} and "added 3000 pairs" in quiet and "wrote 3000 examples" in quiet
    # a handful of rows is quick work: no bar at all
    small = piped(["import", str(tmp_path / "ws3"), str(_rows_file(tmp_path / "few.jsonl", 5))])
    assert _stage_lines(small) == {}, small
