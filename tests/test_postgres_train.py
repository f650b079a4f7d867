"""``train``, ``evaluate`` and ``runs`` on a PostgreSQL workspace: the run's record, metrics and
reference cache live in the database, its checkpoints and adapter in a folder on this
computer (``--runs-dir``); no output shows the password."""

from __future__ import annotations

import json
from pathlib import Path

from main import main
from storage.metrics import read_metrics
from storage.runs import get_run
from storage.workspace import Workspace
from tests.pg_server import url_for
from tests.tiny_models import fill_workspace, make_tiny_model_dir

SECRET = "S3cret-pw-not-shown"


def test_train_evaluate_and_runs_on_a_url_workspace(fresh_postgres_url: str, tmp_path: Path, capsys) -> None:
    url = url_for(fresh_postgres_url.rsplit("/", 1)[1], password=SECRET)
    model_dir = make_tiny_model_dir(tmp_path / "model")
    with Workspace.open(url) as ws:
        fill_workspace(ws, 16)
    runs_dir = tmp_path / "my-runs"
    code = main(["train", url, "--runs-dir", str(runs_dir), "--quiet", "--set", f"base_model={model_dir}",
                 "--set", "max_steps=2", "--set", "batch_size=8", "--set", "eval_split=0.25"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_id = out.split()[1]
    assert "completed at step 2/2" in out
    assert (runs_dir / run_id / "config.json").is_file() and (runs_dir / run_id / "adapter").is_dir()
    with Workspace.open(url) as ws:
        run = get_run(ws, run_id)
        assert Path(run.run_dir) == runs_dir / run_id and run.status.value == "completed"
        assert read_metrics(ws, run_id, "train")["loss"]

    assert main(["evaluate", url, "--runs-dir", str(runs_dir), "--adapter", run_id, "--split", "all", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["pairs"] == 16 and "rewards/margins" in metrics
    assert main(["runs", url, "--json"]) == 0
    listed = capsys.readouterr()
    assert json.loads(listed.out)[0]["id"] == run_id
    assert SECRET not in out + err + listed.out + listed.err
