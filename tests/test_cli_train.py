"""``python main.py train / evaluate / runs`` end to end on a tiny model (in-process)."""

from __future__ import annotations

import json

import pytest

from main import main
from storage.workspace import Workspace
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One workspace trained once through the command line, shared by the read-only tests."""
    tmp_path = tmp_path_factory.mktemp("cli")
    model_dir = make_tiny_model_dir(tmp_path / "model")
    workspace = Workspace.open(tmp_path / "ws")
    fill_workspace(workspace, 24)
    config_file = tmp_path / "dpo.toml"
    config_file.write_text(f'[model]\nbase_model = "{model_dir}"\n\n[optim]\nlr = 5e-3\nbatch_size = 8\n'
                           'max_steps = 4\n\n[eval]\neval_split = "0.25"\neval_interval = 2\n')
    with pytest.MonkeyPatch.context() as patch:
        out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
        with open(out_file, "w") as out_stream, open(err_file, "w") as err_stream:
            patch.setattr("sys.stdout", out_stream)
            patch.setattr("sys.stderr", err_stream)
            code = main(["train", str(workspace.root), "--config", str(config_file), "--set", "max_steps=3",
                         "--set", "sft_weight=0.5"])
    out, err = out_file.read_text(), err_file.read_text()
    assert code == 0, err
    yield workspace, model_dir, out, err
    workspace.close()


def test_train_prints_progress_and_writes_the_run(trained) -> None:
    workspace, _, out, err = trained
    assert "completed at step 3/3" in out                  # --set wins over the file's max_steps = 4
    assert "3/3" in err and "ETA" in err and "eval @ step" in err
    run_id = out.split()[1]
    assert (workspace.root / "runs" / run_id / "config.json").exists()
    saved = json.loads((workspace.root / "runs" / run_id / "config.json").read_text())["config"]
    assert saved["learning_rate"] == 5e-3 and saved["sft_weight"] == 0.5


def test_runs_lists_runs(trained, capsys) -> None:
    workspace, _, out, _ = trained
    run_id = out.split()[1]
    assert main(["runs", str(workspace.root)]) == 0
    listing = capsys.readouterr().out
    assert run_id in listing and "completed" in listing
    assert main(["runs", str(workspace.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == run_id


def test_evaluate_prints_json_metrics(trained, capsys) -> None:
    workspace, _, out, _ = trained
    run_id = out.split()[1]
    assert main(["evaluate", str(workspace.root), "--adapter", run_id, "--split", "all", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["pairs"] == 24
    for name in ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "prob/preference"):
        assert name in metrics
    # the same adapter by folder, on the eval split
    adapter = workspace.root / "runs" / run_id / "adapter"
    assert main(["evaluate", str(workspace.root), "--adapter", str(adapter), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] < 24


def test_bad_input_is_named(workspace, tmp_path, capsys) -> None:
    assert main(["train", str(workspace.root), "--set", "betta=0.1"]) == 2
    assert "setting 'betta': unknown setting" in capsys.readouterr().err
    assert main(["train", str(workspace.root), "--set", "base_model=x", "--set", "lr=fast"]) == 2
    assert "setting 'lr': expected a number, not 'fast'" in capsys.readouterr().err
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("beta = [1\n")
    assert main(["train", str(workspace.root), "--config", str(bad_toml)]) == 2
    assert "bad.toml is not valid TOML" in capsys.readouterr().err
    assert main(["evaluate", str(workspace.root), "--adapter", "no-such-run"]) == 2
    assert "neither a run id" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "missing")]) == 2


def test_runs_exports_and_resume_refusals(trained, tmp_path, capsys) -> None:
    workspace, _, out, _ = trained
    run_id = out.split()[1]
    assert main(["runs", str(workspace.root), "--export-adapter", run_id, str(tmp_path / "adapter"),
                 "--export-metrics", run_id, str(tmp_path / "m.csv")]) == 0
    printed = capsys.readouterr().out
    assert "exported the adapter" in printed and "exported the metrics" in printed
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "m.csv").read_text().splitlines()[0].startswith("step,split,")
    assert main(["runs", str(workspace.root), "--export-metrics", "nope", str(tmp_path / "x.csv")]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["runs", str(workspace.root), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["resumable"] is False and "β=" in row["settings"]
    # The one resumability rule (storage.runs.is_resumable), asked before any work.
    assert main(["train", str(workspace.root), "--resume", run_id]) == 2
    assert f"cannot resume: run {run_id} is already completed" in capsys.readouterr().err
    assert main(["train", str(workspace.root), "--resume", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_the_workspace_base_model_setting_is_the_default(workspace, tmp_path, capsys) -> None:
    from storage.settings import update_settings

    update_settings(workspace, base_model=str(tmp_path / "no-model-here"), training_config={"beta": 0.2})
    assert main(["train", str(workspace.root), "--set", "max_steps=1"]) == 2    # launch checks, before any work
    err = capsys.readouterr().err
    assert "setting 'base_model'" in err and "no-model-here" in err
    assert "setting 'data'" not in err and "no labelled pairs" in err
