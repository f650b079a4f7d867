"""Presets (workspace and TOML), metrics CSV and adapter export, launch checks (no Qt)."""

from __future__ import annotations

import csv

import pytest

from core.operations import presets
from core.operations.launch_checks import (DATA_KEY, config_problems, inspect_model, launch_problems, preview_data,
                                token_preview)
from core.operations.metrics_export import export_metrics_csv, metrics_table
from core.engine.run_export import ExportError, export_adapter
from core.engine.run_records import create_run
from storage.metrics import MetricWriter
from core.engine.training_config import ConfigError, TrainingConfig
from storage.training_set import build_training_set
from tests.tiny_models import fill_workspace, make_tiny_model_dir


def test_presets_round_trip_in_the_workspace_and_keep_the_model(workspace):
    config = TrainingConfig(base_model="/models/a", beta=0.25, learning_rate=1e-4, batch_size=2, sft_weight=1.0)
    presets.save_preset(workspace, "careful", config)
    assert presets.list_presets(workspace) == ["careful"]
    loaded = presets.load_preset(workspace, "careful", TrainingConfig(base_model="/models/b"))
    assert (loaded.beta, loaded.learning_rate, loaded.batch_size, loaded.sft_weight) == (0.25, 1e-4, 2, 1.0)
    assert loaded.base_model == "/models/b"      # a preset is how to train, not what
    with pytest.raises(presets.PresetError, match="no preset named 'nope'"):
        presets.load_preset(workspace, "nope")
    with pytest.raises(ConfigError, match="beta"):
        presets.save_preset(workspace, "bad", TrainingConfig(base_model="m", beta=-1.0))
    presets.delete_preset(workspace, "careful")
    assert presets.list_presets(workspace) == []


def test_presets_as_toml_files_are_readable_by_the_cli_loader(tmp_path):
    config = TrainingConfig(base_model="m", loss_type="ipo", beta=0.5, lora_target_modules="q_proj,v_proj",
                            gradient_checkpointing=True)
    path = presets.write_preset_toml(tmp_path / "p.toml", config)
    again = TrainingConfig.from_toml(path)
    assert again.to_dict() == {**config.to_dict(), "base_model": ""}
    merged = presets.read_preset_toml(path, TrainingConfig(base_model="kept"))
    assert merged.base_model == "kept" and merged.loss_type == "ipo"
    (tmp_path / "bad.toml").write_text("beta = 'high'\n")
    with pytest.raises(ConfigError, match=r"bad.toml: setting 'beta'"):
        presets.read_preset_toml(tmp_path / "bad.toml")


def _run_with_metrics(ws, run_id="r1"):
    create_run(ws, run_id, TrainingConfig(base_model="m"), ws.runs_dir / run_id, total_steps=2)
    writer = MetricWriter(ws, run_id)
    writer.add(1, "train", {"loss": 0.7, "learning_rate": 1e-4})
    writer.add(2, "train", {"loss": 0.6, "learning_rate": 5e-5})
    writer.add(2, "eval", {"loss": 0.65})
    writer.flush()


def test_metrics_csv_has_a_row_per_step_and_split(workspace, tmp_path):
    _run_with_metrics(workspace)
    header, rows = metrics_table(workspace, "r1")
    assert header == ["step", "split", "learning_rate", "loss"]
    assert rows == [[1, "train", 1e-4, 0.7], [2, "train", 5e-5, 0.6], [2, "eval", "", 0.65]]
    path = export_metrics_csv(workspace, "r1", tmp_path / "out" / "m.csv")
    with path.open() as handle:
        read = list(csv.reader(handle))
    assert read[0] == header and read[3] == ["2", "eval", "", "0.65"]
    with pytest.raises(ValueError, match="no stored metrics"):
        export_metrics_csv(workspace, "missing", tmp_path / "x.csv")


def test_export_adapter_refuses_a_run_without_one(workspace, tmp_path):
    _run_with_metrics(workspace)
    with pytest.raises(ExportError, match="no saved adapter"):
        export_adapter(workspace, "r1", tmp_path / "a")
    with pytest.raises(ExportError, match="no run 'zz'"):
        export_adapter(workspace, "zz", tmp_path / "a")


def test_config_problems_reports_every_bad_field_at_once():
    config, problems = config_problems({"base_model": "m", "beta": "-0.1", "batch_size": "0", "learning_rate": "abc",
                                        "lora_r": "8"})
    assert config is None
    assert set(problems) == {"beta", "batch_size", "learning_rate"}
    assert "positive" in problems["beta"] and "at least 1" in problems["batch_size"]
    assert "expected a number" in problems["learning_rate"]
    config, problems = config_problems({"base_model": "m", "beta": "0.2"})
    assert problems == {} and config.beta == 0.2


def test_inspect_model_names_what_a_folder_lacks(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no model" in inspect_model(str(empty)).problem
    assert "does not exist" in inspect_model(str(tmp_path / "missing")).problem
    assert "not in the local Hugging Face cache" in inspect_model("nobody/no-such-model").problem
    assert "no base model" in inspect_model("  ").problem
    model = make_tiny_model_dir(tmp_path / "tiny")
    assert inspect_model(str(model)).ok
    (model / "tokenizer.json").unlink()
    (model / "tokenizer_config.json").unlink()
    assert "no tokenizer" in inspect_model(str(model)).problem


def test_launch_problems_refuses_a_workspace_without_pairs(workspace, tmp_path):
    model = make_tiny_model_dir(tmp_path / "tiny")
    config, problems = launch_problems(workspace, {"base_model": str(model)})
    assert config is None and "no labelled pairs" in problems[DATA_KEY]
    fill_workspace(workspace, 12)
    config, problems = launch_problems(workspace, {"base_model": str(model), "max_steps": "3"})
    assert problems == {} and config.max_steps == 3


def test_previews_count_pairs_and_what_max_length_cuts(workspace, tmp_path):
    fill_workspace(workspace, 20)
    model = make_tiny_model_dir(tmp_path / "tiny")
    config = TrainingConfig(base_model=str(model))
    training_set = build_training_set(workspace)
    preview = preview_data(workspace, config, training_set)
    assert preview.total == 20 and preview.train_pairs == len(training_set.train)
    fraction = preview_data(workspace, TrainingConfig(base_model="m", eval_split="0.25"), training_set)
    assert fraction.eval_pairs == 5 and fraction.eval_estimated and "about 5" in fraction.describe()
    tokens = token_preview(config, training_set.examples)
    assert tokens.truncated == 0 and tokens.dropped == {} and tokens.longest > 10
    short = token_preview(TrainingConfig(base_model=str(model), max_length=tokens.longest - 2), training_set.examples)
    assert short.truncated + sum(short.dropped.values()) >= 1
    tiny = token_preview(TrainingConfig(base_model=str(model), max_length=4), training_set.examples)
    assert sum(tiny.dropped.values()) == 20     # the prompt alone is longer: no answer token left
    assert tokens.sample is None and tiny.sample is None                  # all 20 were tokenised
    # A large set is counted on an even sample and scaled: 5 of 20 here, every one dropped.
    sampled = token_preview(TrainingConfig(base_model=str(model), max_length=4), training_set.examples, sample=5)
    assert (sampled.sample, sampled.of, sum(sampled.dropped.values())) == (5, 20, 20)
