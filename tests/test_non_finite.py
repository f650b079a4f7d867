"""A run driven to a non-finite loss names a checkpoint whose weights are finite and were not
already diverging, and resuming from it with a lower learning rate completes."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.engine.checkpoints import list_checkpoints
from core.engine.divergence import DivergenceWatch, weights_are_finite
from core.engine.trainer import TrainingFailed, train
from core.engine.training_config import TrainingConfig
from main import main
from storage.metrics import read_metrics
from storage.models import RunStatus
from storage.runs import get_run
from storage.workspace import Workspace
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


class Diverging(torch.optim.AdamW):
    """Blows the weights up to 1e30 (finite, but diverged) at its third update while ``armed``;
    the checkpoint written right after holds those weights."""

    armed = True
    updates = 0

    def step(self, closure=None):
        result = super().step(closure)
        Diverging.updates += 1
        if Diverging.armed and Diverging.updates == 3:
            with torch.no_grad():
                for group in self.param_groups:
                    for param in group["params"]:
                        param.fill_(1e30)
        return result


@pytest.mark.slow   # trains, diverges, resumes
def test_the_named_checkpoint_is_finite_and_resuming_with_a_lower_rate_completes(tmp_path, model_dir,
                                                                                  monkeypatch) -> None:
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 16)
    monkeypatch.setattr(torch.optim, "AdamW", Diverging)
    config = TrainingConfig(base_model=str(model_dir), max_steps=6, batch_size=8, learning_rate=5e-3,
                            eval_split="0.25", eval_interval=0, checkpoint_interval=1, keep_checkpoints=0, seed=1)
    with pytest.raises(TrainingFailed, match=r"at step 4: stopped without applying") as failure:
        train(ws, config)
    run = get_run(ws, failure.value.run_id)
    assert run.status == RunStatus.FAILED
    assert "the last good checkpoint is step-2" in run.error and "learning_rate" in run.error
    assert f"--resume {run.id} --set learning_rate=" in run.error
    kept = list_checkpoints(Path(run.run_dir))
    assert [p.name for p in kept] == ["step-1", "step-2"]   # step-3 (weights of 1e30) set aside
    assert (Path(run.run_dir) / "checkpoints" / "diverged-step-3").is_dir()
    weights = load_file(str(kept[-1] / "adapter_model.safetensors"))
    assert weights and all(torch.isfinite(t).all() and t.abs().max() < 1e3 for t in weights.values())

    Diverging.armed = False
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", str(ws.root), "--resume", run.id, "--set", "learning_rate=5e-4", "--quiet"])
    assert code == 0, err.getvalue()
    assert "resuming with learning_rate: 0.005 -> 0.0005" in err.getvalue()
    resumed = get_run(ws, run.id)
    assert resumed.status == RunStatus.COMPLETED and resumed.step == 6
    assert resumed.config["learning_rate"] == 5e-4
    rates = dict(read_metrics(ws, run.id, split="train")["learning_rate"])
    assert sorted(rates) == [1, 2, 3, 4, 5, 6] and rates[2] > 1e-3
    assert all(0 < rates[step] <= 5e-4 for step in (3, 4, 5, 6))   # the lower rate, where the schedule is
    final = load_file(str(Path(resumed.adapter_path) / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in final.values())
    ws.close()


@pytest.mark.slow   # trains, diverges, resumes
def test_keep_checkpoints_never_prunes_the_last_good_one(tmp_path, model_dir, monkeypatch) -> None:
    # keep_checkpoints=1 alone would leave only step-3 (weights of 1e30) when step 4 fails;
    # pruning keeps the newest good checkpoint besides the newest one.
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 16)
    monkeypatch.setattr(torch.optim, "AdamW", Diverging)
    monkeypatch.setattr(Diverging, "armed", True)
    monkeypatch.setattr(Diverging, "updates", 0)
    config = TrainingConfig(base_model=str(model_dir), max_steps=6, batch_size=8, learning_rate=5e-3,
                            eval_split="0.25", eval_interval=0, checkpoint_interval=1, keep_checkpoints=1, seed=1)
    with pytest.raises(TrainingFailed, match=r"at step 4: stopped without applying") as failure:
        train(ws, config)
    run = get_run(ws, failure.value.run_id)
    assert "the last good checkpoint is step-2" in run.error
    checkpoints = Path(run.run_dir) / "checkpoints"
    assert [p.name for p in list_checkpoints(Path(run.run_dir))] == ["step-2"]   # step-1 pruned
    assert (checkpoints / "diverged-step-3").is_dir() and not (checkpoints / "step-1").exists()
    assert weights_are_finite(checkpoints / "step-2")

    Diverging.armed = False
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", str(ws.root), "--resume", run.id, "--set", "learning_rate=5e-4", "--quiet"])
    assert code == 0, err.getvalue()
    resumed = get_run(ws, run.id)
    assert resumed.status == RunStatus.COMPLETED and resumed.step == 6
    # the newest one, and step-5: good for sure (step 6 ran finite from it); step-6 is not known good yet
    assert [p.name for p in list_checkpoints(Path(run.run_dir))] == ["step-5", "step-6"]
    ws.close()


def test_a_gradient_norm_spike_makes_its_checkpoint_suspect(tmp_path) -> None:
    watch = DivergenceWatch()
    for step, norm in enumerate([1.0, 1.2, 0.9, 1.1, 40.0, 80.0], start=1):
        watch.step(step, norm)
    paths = [tmp_path / f"step-{n}" for n in (3, 5)]
    for path in paths:
        path.mkdir()
    # step-5's gradient norm was 40x the median before it: exploding already, not good.
    # step-3 has no readable weights here, so it is not good either.
    assert watch.suspect_steps == {5, 6}
    assert watch.last_good(7, paths) is None
    assert not weights_are_finite(paths[0])
