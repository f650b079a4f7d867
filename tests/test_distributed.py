"""Data-parallel training (core.engine.distributed): two gloo processes on the CPU train the same
loss curve as one process with the same global batch, only rank 0 writes, and a stopped
two-process run resumes to where an uninterrupted one ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import os
import subprocess
import sys
import threading
import time

from core.engine.trainer import TrainingObserver, train
from core.engine.training_config import TrainingConfig
from core.engine.training_control import MetricSplit, RunStarted, StepMetrics, TrainingControl
from core.operations.training import SessionState, TrainingSession
from main import main
from storage.metrics import read_metrics
from storage.models import RunStatus
from storage.runs import get_run, list_runs
from storage.workspace import Workspace
from tests.test_training_session import Driver, small
from tests.tiny_models import fill_workspace, make_tiny_model_dir

STEPS = 4


class StopAfter(TrainingObserver):
    """Asks the run to stop once step ``step`` is reported (as the Stop button does)."""

    def __init__(self, control: TrainingControl, step: int):
        self.control, self.step = control, step

    def on_step(self, step, metrics):
        if step == self.step:
            self.control.request_stop()


def _settings(model_dir: Path, **values) -> TrainingConfig:
    values = {"device": "cpu", **values}
    # 13 pairs, 4 per global micro-batch, 2 micro-batches a step: the epoch ends on a micro-batch
    # of one pair (rank 1's slice empty) and the second epoch follows on; SFT on, so the token
    # weighting across ranks counts; packed pairs (the default); no adapter dropout.
    return TrainingConfig(base_model=str(model_dir), max_steps=STEPS, learning_rate=5e-3,
                          gradient_accumulation_steps=2, sft_weight=0.5, eval_split="0.15", eval_interval=2,
                          checkpoint_interval=2, seed=3, **values)


def _adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def _assert_same_metrics(ws: Workspace, run_a: str, run_b: str, steps: list[int] | None = None) -> int:
    compared = 0
    for split in ("train", "eval"):
        expected, got = read_metrics(ws, run_a, split), read_metrics(ws, run_b, split)
        assert set(got) == set(expected), split
        for name, series in expected.items():
            if name == "tokens_per_second":
                continue
            series = [(s, v) for s, v in series if steps is None or s in steps]
            mine = [(s, v) for s, v in got[name] if steps is None or s in steps]
            assert [s for s, _ in mine] == [s for s, _ in series], (split, name)   # one row per step: one writer
            for (step, value), (_, want) in zip(mine, series):
                assert value == pytest.approx(want, rel=1e-4, abs=1e-4), (split, name, step)
                compared += 1
    return compared


@pytest.fixture
def tiny(tmp_path):
    """(model folder, workspace of 15 pairs), trained on one thread per process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model_dir = make_tiny_model_dir(tmp_path / "model")
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 15)
    try:
        with ws:
            yield model_dir, ws
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_resume(tiny, report_figures) -> None:
    model_dir, ws = tiny
    single = train(ws, _settings(model_dir, batch_size=4))
    parallel = train(ws, _settings(model_dir, batch_size=2, processes=2))

    # The same loss curve as one process with the same global batch (4 pairs x 2 micro-batches).
    compared = _assert_same_metrics(ws, single, parallel)
    losses = [(v, w) for (_, v), (_, w) in zip(read_metrics(ws, single, "train")["loss"],
                                                read_metrics(ws, parallel, "train")["loss"])]
    worst = max(abs(v - w) for v, w in losses)
    assert worst < 1e-4

    # Only rank 0 wrote: one run row, one metric row per step and name, one run folder.
    run = get_run(ws, parallel)
    assert run.status == RunStatus.COMPLETED and run.step == STEPS and run.config["processes"] == 2
    assert sorted(r.id for r in list_runs(ws)) == sorted([single, parallel])
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == sorted([single, parallel])
    run_dir = Path(run.run_dir)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-2", "step-4"]
    assert {p.name for p in run_dir.iterdir()} == {"adapter", "checkpoints", "config.json"}

    # Stopped after step 2 and resumed: ends where the uninterrupted two-process run ends.
    control = TrainingControl()
    stopped = train(ws, _settings(model_dir, batch_size=2, processes=2), StopAfter(control, 2), control)
    assert get_run(ws, stopped).status == RunStatus.STOPPED and get_run(ws, stopped).step == 2
    assert train(ws, None, resume_run_id=stopped) == stopped
    resumed = get_run(ws, stopped)
    assert resumed.status == RunStatus.COMPLETED and resumed.step == STEPS
    _assert_same_metrics(ws, parallel, stopped)
    want, got = _adapter(run_dir), _adapter(Path(resumed.run_dir))
    assert set(got) == set(want)
    weight_gap = max(float((got[key] - want[key]).abs().max()) for key in want)
    assert weight_gap < 1e-4
    report_figures(f"data parallel, 2 gloo processes x 2 pairs vs 1 process x 4 pairs, {STEPS} steps: "
                   f"{compared} metric values equal to 1e-4, largest loss gap {worst:.1e}; "
                   f"stopped at step 2 and resumed: adapter weights within {weight_gap:.1e}")


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_nccl_processes_match_one_gpu(tiny) -> None:
    """The same on two GPUs (NCCL), float32: one GPU with 4 pairs against two with 2 each."""
    model_dir, ws = tiny
    single = train(ws, _settings(model_dir, batch_size=4, device="cuda", dtype="float32"))
    parallel = train(ws, _settings(model_dir, batch_size=2, processes=2, device="cuda", dtype="float32"))
    _assert_same_metrics(ws, single, parallel)
    assert get_run(ws, parallel).status == RunStatus.COMPLETED


@pytest.mark.slow
def test_the_apps_child_process_trains_in_two_processes_and_pauses_and_stops_them(tmp_path) -> None:
    """As the Train tab runs "all GPUs" (here two CPU processes): the child is rank 0; a pause at
    step 2 holds both ranks, and the stop at step 5 ends both after that step."""
    model_dir = make_tiny_model_dir(tmp_path / "model")
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 16)
    with ws:
        session = TrainingSession(ws, in_child=True)
        session.start(values=small(model_dir, max_steps=40, batch_size=2, processes=2, device="cpu"))
        driver = Driver(session)
        worker = threading.Thread(target=session.run)
        worker.start()
        assert driver.paused.wait(300)
        steps = sum(isinstance(e, StepMetrics) for e in driver.events)
        time.sleep(1.0)
        assert session.state == SessionState.PAUSED
        assert sum(isinstance(e, StepMetrics) for e in driver.events) == steps   # no rank trains while paused
        assert session.resume()
        worker.join(300)
        assert not worker.is_alive()
        assert session.outcome.status == RunStatus.STOPPED, session.outcome.error
        run = get_run(ws, session.run_id)
        # The request crosses a pipe while the child trains on: it stops after the step it is in.
        assert run.status == RunStatus.STOPPED and 5 <= run.step <= 8 and run.config["processes"] == 2
        started = next(e for e in driver.events if isinstance(e, RunStarted))
        assert started.info.device == "2 × cpu"
        train_steps = [e.step for e in driver.events if isinstance(e, StepMetrics) and e.split == MetricSplit.TRAIN]
        assert train_steps == list(range(1, run.step + 1))
        assert [s for s, _ in read_metrics(ws, run.id, "train")["loss"]] == train_steps   # one writer


@pytest.mark.slow
def test_torchrun_of_main_py_train_is_the_same_run(tiny) -> None:
    """``torchrun --nproc-per-node 2 main.py train …`` (what ``accelerate launch`` also does: RANK,
    WORLD_SIZE in the environment): rank 0 trains and writes, rank 1 follows; the same curve."""
    model_dir, ws = tiny
    single = train(ws, _settings(model_dir, batch_size=4))
    values = {**_settings(model_dir, batch_size=2).to_dict()}
    settings = [f"{key}={values[key]}" for key in ("base_model", "device", "max_steps", "learning_rate",
                "gradient_accumulation_steps", "sft_weight", "eval_split", "eval_interval",
                "checkpoint_interval", "seed", "batch_size")]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "main.py", "train", str(ws.root), "--quiet"] + [arg for s in settings for arg in ("--set", s)]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    launched = done.stdout.split()[1]
    assert f"run {launched} completed at step {STEPS}/{STEPS}" in done.stdout
    assert get_run(ws, launched).config == {**get_run(ws, single).config, "batch_size": 2, "processes": 2}
    _assert_same_metrics(ws, single, launched)
    assert sorted(r.id for r in list_runs(ws)) == sorted([single, launched])


def test_cli_refuses_a_bad_process_count(tmp_path, capsys) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 4)
    ws.close()
    code = main(["train", str(tmp_path / "ws"), "--set", f"base_model={model_dir}", "--processes", "0"])
    assert code == 2
    assert "setting 'processes': must be at least 1, not 0" in capsys.readouterr().err
    code = main(["train", str(tmp_path / "ws"), "--set", f"base_model={model_dir}", "--set", "device=mps",
                 "--processes", "2"])
    assert code == 2


def test_processes_on_one_gpu_of_several_are_refused() -> None:
    problems = {p.key: p.message for p in TrainingConfig(base_model="m", device="cuda:1", processes=2).problems()}
    assert set(problems) == {"processes"} and "all GPUs (device cuda)" in problems["processes"]
    assert TrainingConfig(base_model="m", device="cuda:1").problems() == []
