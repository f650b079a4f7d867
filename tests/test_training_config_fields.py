"""The training settings' single source: every field's metadata, every problem at once, the
TOML reader's refusal of a setting given twice, and the imports that must work on Python 3.10
and on Windows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.bundled_models import DEMO_MODEL
from core.engine.config_fields import GROUPS, POLICY_LABELS
from core.engine.model_location import describe_model, inspect_model
from core.engine.training_config import (ConfigError, SELECTION_POLICIES, TrainingConfig, load_config,
                                         read_toml_settings)
from core.operations.launch_checks import config_problems, default_config
from storage.settings import WorkspaceSettings
from storage.training_set import POLICIES

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_carries_a_label_a_one_line_help_and_a_group():
    specs = TrainingConfig.specs()
    assert list(specs) == TrainingConfig.field_names()
    for key, spec in specs.items():
        assert spec.label and spec.group in GROUPS, key
        assert spec.help.endswith(".") and 20 < len(spec.help) < 160 and spec.help.count(". ") == 0, key
        for choice in spec.choices:
            assert choice.value and choice.label, key
    defaults = TrainingConfig(base_model="m")
    assert defaults.problems() == []          # every default is inside its own range
    assert set(SELECTION_POLICIES) == set(POLICIES) == set(POLICY_LABELS)
    assert {spec.group for spec in specs.values()} == set(GROUPS)


def test_problems_lists_every_bad_setting_each_naming_its_field():
    config = TrainingConfig(beta=-1.0, batch_size=0, lora_dropout=1.0, eval_split="2", learning_rate=float("nan"),
                            loss_type="ipo", label_smoothing=0.2, device="tpu")
    problems = {p.key: p.message for p in config.problems()}
    assert set(problems) == {"base_model", "beta", "batch_size", "lora_dropout", "eval_split", "learning_rate",
                             "label_smoothing", "device"}
    assert problems["beta"] == "must be a positive number, not -1"
    assert problems["batch_size"] == "must be at least 1, not 0"
    assert problems["lora_dropout"] == "must be in [0, 1), not 1"
    assert "a fraction must be in [0, 1)" in problems["eval_split"]
    assert "only applies to the sigmoid and robust losses" in problems["label_smoothing"]
    assert "must be one of auto, cuda, mps, cpu" in problems["device"]
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert len(caught.value.problems) == 8 and str(caught.value).count("\n") == 7
    assert "setting 'beta': must be a positive number" in str(caught.value)


def test_parse_reports_wrong_types_and_bad_values_together_by_the_name_written():
    config, problems = TrainingConfig.parse({"lr": "fast", "beta": "-0.5", "steps": "-3", "nope": 1,
                                             "base_model": "m", "batch_size": "2"})
    found = {p.key: p.message for p in problems}
    assert found["lr"] == "expected a number, not 'fast'"
    assert found["beta"].startswith("must be a positive number")
    assert found["steps"].startswith("must be zero (use epochs) or positive")
    assert found["nope"].startswith("unknown setting")
    assert config.batch_size == 2 and config.learning_rate == TrainingConfig().learning_rate
    _, joined = config_problems({"base_model": "m", "label_smoothing": "0.7", "loss_type": "hinge"})
    assert "must be in [0, 0.5)" in joined["label_smoothing"]


def test_load_config_names_the_source_of_every_problem(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("[loss]\nbeta = -2\n\n[optim]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(toml, ["lr=fast"], {"base_model": "m"})
    lines = str(caught.value).splitlines()
    assert f"{toml}: setting 'beta': must be a positive number, not -2" in lines
    assert f"{toml}: setting 'batch_size': must be at least 1, not 0" in lines
    assert "--set: setting 'lr': expected a number, not 'fast'" in lines
    assert load_config(toml, ["beta=0.2", "batch_size=4"], {"base_model": "m"}).beta == 0.2   # --set wins


def test_a_setting_in_two_tables_is_refused_naming_both(tmp_path):
    twice = tmp_path / "twice.toml"
    twice.write_text("[loss]\nbeta = 0.1\n\n[objective]\nbeta = 0.5\n")
    with pytest.raises(ConfigError, match=r"setting 'beta': set twice: in \[loss\] and in \[objective\]"):
        read_toml_settings(twice)
    aliased = tmp_path / "aliased.toml"
    aliased.write_text("learning_rate = 1e-4\n\n[optim]\nlr = 5e-4\n")
    with pytest.raises(ConfigError, match=r"set twice: in the top level and in \[optim\] lr"):
        TrainingConfig.from_toml(aliased)
    fine = tmp_path / "fine.toml"
    fine.write_text("[lora]\nr = 4\n\n[optim]\nlr = 5e-4\n")
    assert TrainingConfig.from_toml(fine).lora_r == 4


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_config_reads_toml_through_tomli_where_tomllib_is_missing():
    # Python 3.10 has no tomllib; the same parser comes from the tomli package there.
    done = _python("import sys, tomllib as real; sys.modules['tomllib'] = None; sys.modules['tomli'] = real\n"
                   "import core.engine.training_config as tc; assert tc.tomllib is real; print('ok')")
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "\"tomli>=2; python_version < '3.11'\"" in pyproject


def test_modeling_imports_without_the_unix_only_resource_module():
    done = _python("import sys; sys.modules['resource'] = None\n"
                   "import torch; from core.engine.modeling import memory_report\n"
                   "report = memory_report(torch.device('cpu')); assert 'process_peak_rss_mib' not in report\n"
                   "print('ok')")
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_one_model_resolver_for_loading_checks_and_names(tmp_path):
    from core.engine.modeling import ModelLoadError, resolve_model_path

    check = inspect_model(DEMO_MODEL)
    if check.folder is not None:
        assert resolve_model_path(DEMO_MODEL) == (str(check.folder), True) and check.kind == "bundled"
    assert describe_model(DEMO_MODEL) == "Demo model (bundled with the app)"
    assert describe_model(str(tmp_path / "tiny")) == f"tiny (folder in {tmp_path})"
    assert describe_model("org/name") == "org/name (Hugging Face cache)"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_path(str(tmp_path / "empty"))
    assert "holds no model (no config.json)" in inspect_model(str(tmp_path / "empty")).problem


def test_the_default_config_rule_is_the_same_for_the_gui_and_the_cli():
    saved = {"beta": 0.3, "base_model": "/models/saved"}
    assert default_config(WorkspaceSettings(training_config=saved)).base_model == "/models/saved"
    both = default_config(WorkspaceSettings(training_config=saved, base_model="/models/workspace"))
    assert both.base_model == "/models/workspace" and both.beta == 0.3     # the workspace's model wins
    broken = default_config(WorkspaceSettings(training_config={"beta": "high"}), demo_model_available=False)
    assert broken.beta == TrainingConfig().beta and broken.base_model == ""
