"""The demo's measurable effect, end to end and headless: create the demo workspace, train it
with its default settings, sample held-out prompts from base and tuned model. The helpful share
must rise by at least 30 points, with the drift from the base (KL estimate) reported."""

from __future__ import annotations

import math
import time

import pytest

from core.demo.demo_eval import evaluate_demo, format_report
from main import main
from storage.workspace import Workspace

EVAL_PROMPTS = 64  # one sample each; enough to see a 30-point rise well clear of sampling noise


@pytest.mark.slow
def test_default_training_raises_the_helpful_share_by_30_points(tmp_path, capsys, report_figures):
    folder = tmp_path / "demo"
    assert main(["demo", str(folder)]) == 0
    started = time.monotonic()
    assert main(["train", str(folder), "--quiet"]) == 0
    train_seconds = time.monotonic() - started

    with Workspace.open(folder, create=False) as ws:
        report = evaluate_demo(ws, prompts=EVAL_PROMPTS, seed=0)  # temperature 0.7, the documented default
    # Shown by -rA (or -s), never in plain -q output.
    report_figures(f"[demo effect] default training took {train_seconds:.0f} s\n{format_report(report)}")

    assert report.tuned is not None and report.prompts == EVAL_PROMPTS
    assert report.helpful_gain >= 0.30, format_report(report)
    # The tuned model moved away from the base, but its text stayed clean (not junk).
    assert math.isfinite(report.kl) and report.kl > 0
    assert report.tuned.shares["other"] <= 0.25, format_report(report)

    # demo-eval prints the same numbers from the command line.
    assert main(["demo-eval", str(folder), "--prompts", "8", "--json"]) == 0
    assert '"helpful_gain"' in capsys.readouterr().out
