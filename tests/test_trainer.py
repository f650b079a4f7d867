"""The training loop on a real tiny Llama in a real workspace (CPU)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch

from core.engine.checkpoints import list_checkpoints
from storage.metrics import read_metrics
from storage.runs import get_run
from core.engine.trainer import METRIC_NAMES, TrainingControl, TrainingFailed, TrainingObserver, train
from core.engine.training_control import Phase, PhaseChanged, ReferencePassDone, Resumed, RunFinished, StepMetrics
from core.engine.training_config import ConfigError, TrainingConfig
from storage.models import RunStatus, TrainingRun
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


class Recorder(TrainingObserver):
    def __init__(self):
        self.steps, self.evals, self.checkpoints, self.finished = [], [], [], []
        self.events = []
        self.info = None

    def on_event(self, event):
        self.events.append(event)
        super().on_event(event)

    def of_type(self, kind):
        return [event for event in self.events if isinstance(event, kind)]

    def phases(self):
        return [event.phase for event in self.of_type(PhaseChanged)]

    def on_start(self, run_info):
        self.info = run_info

    def on_step(self, step, metrics):
        self.steps.append((step, metrics))

    def on_eval(self, step, metrics):
        self.evals.append((step, metrics))

    def on_checkpoint(self, step, path):
        self.checkpoints.append((step, path))

    def on_finish(self, status, error):
        self.finished.append((status, error))


def config(model_dir: Path, **overrides) -> TrainingConfig:
    values = dict(base_model=str(model_dir), max_steps=16, batch_size=8, learning_rate=5e-3, eval_split="0.25",
                  eval_interval=8, checkpoint_interval=8, seed=1)
    values.update(overrides)
    return TrainingConfig(**values)


@pytest.mark.slow
def test_training_learns_on_held_out_pairs(workspace, model_dir) -> None:
    fill_workspace(workspace, 48)
    recorder = Recorder()
    run_id = train(workspace, config(model_dir), recorder)

    assert recorder.info.eval_pairs >= 8 and recorder.info.train_pairs + recorder.info.eval_pairs == 48
    start_step, start = recorder.evals[0]
    assert start_step == 0
    assert start["loss"] == pytest.approx(math.log(2), abs=1e-6)   # policy == reference at step 0
    assert start["rewards/margins"] == 0.0 and start["rewards/accuracies"] == 0.0
    end_step, end = recorder.evals[-1]
    assert end_step == 16
    assert end["rewards/accuracies"] >= 0.8           # held-out pairs now ranked the right way
    assert end["rewards/margins"] > 0.05
    assert end["loss"] < start["loss"] - 0.05

    # every step's metrics, in the table and to the observer, with the names the GUI plots
    assert [s for s, _ in recorder.steps] == list(range(1, 17))
    for name in METRIC_NAMES:
        assert name in recorder.steps[-1][1]
    stored = read_metrics(workspace, run_id, split="train")
    assert [s for s, _ in stored["loss"]] == list(range(1, 17))
    assert stored["rewards/margins"][-1][1] == pytest.approx(recorder.steps[-1][1]["rewards/margins"])
    assert [s for s, _ in read_metrics(workspace, run_id, split="eval")["loss"]] == [0, 8, 16]

    run = get_run(workspace, run_id)
    assert run.status == RunStatus.COMPLETED and run.step == 16 and run.total_steps == 16
    run_dir = Path(run.run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["learning_rate"] == 5e-3 and "torch" in saved["versions"]
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-8", "step-16"]
    assert {"adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pt",
            "trainer_state.json"} <= {f.name for f in (run_dir / "checkpoints" / "step-16").iterdir()}

    # the final adapter loads with plain peft
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import quiet_peft_wrap

    with quiet_peft_wrap():
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), run.adapter_path)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().max()) > 0 for p in lora_b)


def test_a_checkpointed_cpu_run_returns_freed_memory_while_it_trains_and_learns_the_same(workspace, model_dir):
    from core.engine import heap

    fill_workspace(workspace, 16)

    class HeapWatch(Recorder):
        def __init__(self):
            super().__init__()
            self.returning_at_steps = []

        def on_event(self, event):
            if isinstance(event, StepMetrics):
                self.returning_at_steps.append(heap.returning())
            super().on_event(event)

    plain, checkpointed = HeapWatch(), HeapWatch()
    common = dict(max_steps=3, eval_split="0", eval_interval=0, checkpoint_interval=0, device="cpu")
    train(workspace, config(model_dir, **common), plain)
    train(workspace, config(model_dir, gradient_checkpointing=True, **common), checkpointed)

    def losses(recorder):
        return [event.metrics["loss"] for event in recorder.of_type(StepMetrics)]

    assert plain.returning_at_steps == [False] * 3
    assert checkpointed.returning_at_steps == [heap.return_freed_memory()] * 3   # True where glibc is
    assert not heap.returning()                   # glibc's default again once the run ended
    assert losses(checkpointed) == pytest.approx(losses(plain), rel=1e-5, abs=1e-6)


def test_reference_log_probs_are_cached_across_runs(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    first, second = Recorder(), Recorder()
    train(workspace, config(model_dir, max_steps=1, eval_interval=0, checkpoint_interval=0), first)
    train(workspace, config(model_dir, max_steps=1, eval_interval=0, checkpoint_interval=0, lr_schedule="cosine"),
          second)
    def counts(recorder):
        return [(event.cached, event.computed) for event in recorder.of_type(ReferencePassDone)]

    assert counts(first) == [(0, 16)]
    assert counts(second) == [(16, 0)]
    assert Phase.REFERENCE_PASS in first.phases() and Phase.REFERENCE_PASS not in second.phases()
    # a different truncation is a different tokenisation: no stale reuse
    third = Recorder()
    train(workspace, config(model_dir, max_steps=1, max_length=40, eval_interval=0, checkpoint_interval=0), third)
    assert counts(third) == [(0, 16)]


def test_stop_finishes_the_step_and_saves(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    control = TrainingControl()

    class StopAtTwo(Recorder):
        def on_step(self, step, metrics):
            super().on_step(step, metrics)
            if step == 2:
                control.request_stop()

    recorder = StopAtTwo()
    run_id = train(workspace, config(model_dir, checkpoint_interval=0), recorder, control)
    run = get_run(workspace, run_id)
    assert run.status == RunStatus.STOPPED and run.step == 2
    assert recorder.finished == [("stopped", None)]
    assert [p.name for p in list_checkpoints(Path(run.run_dir))] == ["step-2"]
    assert (Path(run.adapter_path) / "adapter_model.safetensors").exists()


def test_stop_during_the_reference_pass_is_a_stop_and_the_run_resumes(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    control = TrainingControl()

    class StopInReferencePass(Recorder):
        def on_phase(self, event):
            if event.phase == Phase.REFERENCE_PASS:
                assert 1 <= event.done <= event.total     # "reference pass, batch n of N"
                control.request_stop()

    recorder = StopInReferencePass()
    run_id = train(workspace, config(model_dir, checkpoint_interval=0, reference_batch_size=4), recorder, control)
    run = get_run(workspace, run_id)
    assert run.status == RunStatus.STOPPED and run.step == 0 and run.error is None
    assert recorder.finished == [("stopped", None)] and recorder.steps == []

    resumed = Recorder()
    assert train(workspace, None, resumed, resume_run_id=run_id) == run_id
    assert get_run(workspace, run_id).status == RunStatus.COMPLETED
    assert resumed.of_type(Resumed) == [Resumed(run_id, from_step=0, checkpoint=None)]
    # One series from step 1, nothing left over from the stopped attempt.
    loss_steps = [step for step, _ in read_metrics(workspace, run_id, "train")["loss"]]
    assert loss_steps == list(range(1, len(loss_steps) + 1))


def test_pause_and_resume(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    control = TrainingControl()
    seen_paused = []

    class PauseAtOne(Recorder):
        def on_step(self, step, metrics):
            super().on_step(step, metrics)
            if step == 1:
                control.pause()

        def on_phase(self, event):
            if event.phase == Phase.PAUSED:
                assert event.step == 1
                with workspace.session() as s:
                    seen_paused.append(s.query(TrainingRun).one().status)
                threading.Timer(0.2, control.resume).start()

    recorder = PauseAtOne()
    train(workspace, config(model_dir, max_steps=3, eval_interval=0, checkpoint_interval=0), recorder, control)
    assert seen_paused == [RunStatus.PAUSED]
    phases = recorder.phases()
    assert phases[phases.index(Phase.PAUSED) + 1] == Phase.TRAINING and len(recorder.steps) == 3   # resumed
    assert phases[:2] == [Phase.LOADING_DATA, Phase.LOADING_MODEL] and phases[-1] == Phase.SAVING
    assert isinstance(recorder.events[-1], RunFinished) and recorder.events[-1].status == RunStatus.COMPLETED


def test_non_finite_loss_stops_with_a_clear_message(workspace, model_dir, monkeypatch) -> None:
    fill_workspace(workspace, 16)
    recorder = Recorder()

    class Diverging(torch.optim.AdamW):
        """Training that blows up at its third update (settings can no longer ask for a
        learning rate absurd enough to do it: the config refuses one above 1)."""

        updates = 0

        def step(self, closure=None):
            result = super().step(closure)
            Diverging.updates += 1
            if Diverging.updates >= 3:
                with torch.no_grad():
                    for group in self.param_groups:
                        for param in group["params"]:
                            param.fill_(1e30)
            return result

    monkeypatch.setattr(torch.optim, "AdamW", Diverging)
    bad = config(model_dir, learning_rate=1.0, max_grad_norm=0.0, checkpoint_interval=1, eval_interval=0,
                 max_steps=6)
    with pytest.raises(TrainingFailed, match=r"became (nan|inf).* at step \d: stopped without applying") as failure:
        train(workspace, bad, recorder)
    run = get_run(workspace, failure.value.run_id)
    assert run.status == RunStatus.FAILED and "Lower learning_rate" in run.error
    good = list_checkpoints(Path(run.run_dir))
    assert good and "last good checkpoint is " + good[-1].name in run.error
    assert recorder.finished[-1][0] == "failed"


def test_bad_settings_are_refused_before_any_work(workspace, model_dir) -> None:
    fill_workspace(workspace, 4)
    with pytest.raises(ConfigError, match="setting 'beta'"):
        train(workspace, config(model_dir, beta=-1.0))
    with pytest.raises(TrainingFailed, match="not a Hugging Face model folder|cannot load"):
        train(workspace, config(model_dir.parent))
    with workspace.session() as s:
        assert s.query(TrainingRun).count() == 0


def test_empty_workspace_says_what_is_missing(workspace, model_dir) -> None:
    with pytest.raises(TrainingFailed, match="no labelled pairs"):
        train(workspace, config(model_dir))


def test_out_of_memory_is_reported_with_what_to_lower(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)

    class OutOfMemory(Recorder):
        def on_step(self, step, metrics):  # the GPU that is not here: its error, raised mid-run
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(TrainingFailed, match="Out of GPU memory. Lower batch_size") as failure:
        train(workspace, config(model_dir, eval_interval=0), OutOfMemory())
    assert get_run(workspace, failure.value.run_id).status == RunStatus.FAILED


def test_merged_export_matches_base_plus_adapter(workspace, model_dir, tmp_path) -> None:
    from core.engine.modeling import export_merged_model, load_with_adapter
    from transformers import AutoModelForCausalLM

    fill_workspace(workspace, 16)
    run = get_run(workspace, train(workspace, config(model_dir, max_steps=3, eval_interval=0)))
    merged_dir = export_merged_model(str(model_dir), run.adapter_path, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    loaded = load_with_adapter(str(model_dir), run.adapter_path, device="cpu", dtype="float32")
    ids = torch.tensor([[0, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, loaded.model(ids).logits, atol=1e-5)
