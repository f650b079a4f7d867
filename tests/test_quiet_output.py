"""Quiet output: loading a model through the engine raises no deprecation warning, and a
test's measured figures reach `-rA` (and `-s`, where the fixture prints them), never plain `python -m pytest -q`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from core.engine.training_config import TrainingConfig
from tests.tiny_models import make_tiny_model_dir

ROOT = Path(__file__).resolve().parents[1]


def test_loading_a_model_with_lora_and_its_saved_adapter_warns_nothing(tmp_path):
    from core.engine.modeling import load_for_training, load_with_adapter

    model_dir = make_tiny_model_dir(tmp_path / "tiny")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        loaded = load_for_training(TrainingConfig(base_model=str(model_dir), device="cpu"))
        loaded.model.save_pretrained(str(tmp_path / "adapter"))
        load_with_adapter(str(model_dir), tmp_path / "adapter", device="cpu")
    deprecations = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in seen
                    if issubclass(w.category, (FutureWarning, DeprecationWarning, PendingDeprecationWarning))]
    assert deprecations == []


FIGURES_TEST = '''
def test_measures_something(report_figures):
    report_figures("figure: 42 ms")
'''


def _inner_pytest(folder: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow   # runs pytest twice inside
def test_figures_show_with_rA_but_not_in_plain_q(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import report_figures  # noqa: F401\n")
    (tmp_path / "test_figures.py").write_text(textwrap.dedent(FIGURES_TEST))
    quiet = _inner_pytest(tmp_path, "-q")
    assert "figure: 42 ms" not in quiet
    assert quiet.strip().splitlines()[0].startswith(".")       # the dots, then the summary
    assert "figure: 42 ms" in _inner_pytest(tmp_path, "-q", "-rA")
