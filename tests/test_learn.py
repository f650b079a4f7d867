"""The Learn tab's numbers (core.operations.learn): the explainer's worked example, the calculator
against the engine's loss, and the six steps of a real pair against the engine and TRL."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest
import torch

from core.engine.dpo_loss import preference_loss, preference_metrics
from core.operations import learn
from storage.training_set import build_training_set
from tests.tiny_models import fill_workspace, make_tiny_model_dir, randomise_lora


def test_the_worked_example_gives_the_explainers_numbers() -> None:
    steps = learn.worked_example_steps()
    assert [s.number for s in steps] == [1, 2, 3, 4, 5, 6]
    assert [s.title for s in steps] == [
        "Get model probabilities", "Get reference model probabilities",
        "Measure how much the model's preference shifted", "How strong is the preference?",
        "Turn the gap into a confidence score", "Grade the model"]
    one, two, three, four, five, six = steps
    assert (one.values["policy_chosen"], one.values["policy_rejected"]) == (0.30, 0.25)
    assert (two.values["reference_chosen"], two.values["reference_rejected"]) == (0.20, 0.30)
    assert round(three.values["chosen_logratio"], 3) == 0.405
    assert round(three.values["rejected_logratio"], 3) == -0.182
    assert round(three.values["chosen_reward"], 3) == 0.041
    assert round(three.values["rejected_reward"], 3) == -0.018
    assert round(four.values["margin"], 3) == 0.059
    assert round(100 * five.values["preference"], 1) == 51.5
    assert round(six.values["loss"], 3) == 0.664
    assert six.values["loss"] == pytest.approx(-math.log(learn.sigmoid(0.1 * math.log(0.30 / 0.20 * 0.30 / 0.25))))
    # and written out as the explainer writes them
    assert "0.1 × log(0.30 / 0.20) = 0.1 × 0.405 = +0.041" in three.lines[0]
    assert "0.1 × log(0.25 / 0.30) = 0.1 × −0.182 = −0.018" in three.lines[1]
    assert four.lines == ("Gap = +0.041 − (−0.018) = 0.059",)
    assert five.lines == ("Confidence = σ(0.059) = 51.5%",) and "needs more training" in five.note
    assert six.lines[0] == "Loss = −log(0.515) = 0.664" and "hasn't learned" in six.note
    assert round(six.values["gradient_weight"], 3) == 0.485


def test_the_calculator_matches_the_engines_loss_and_metrics() -> None:
    rng = random.Random(3)
    for _ in range(50):
        beta = rng.choice([0.01, 0.1, 0.5, 1.0, 5.0])
        logps = [rng.uniform(-80.0, -1.0) for _ in range(4)]
        numbers = learn.from_logps(beta, *logps)
        tensors = [torch.tensor([v], dtype=torch.float64) for v in logps]
        loss = preference_loss(*tensors, beta=beta)
        metrics = preference_metrics(*tensors, torch.tensor([10]), torch.tensor([12]), beta)
        assert numbers.loss == pytest.approx(float(loss), rel=1e-12, abs=1e-12)
        assert numbers.chosen_reward == pytest.approx(float(metrics["rewards/chosen"]), rel=1e-12)
        assert numbers.rejected_reward == pytest.approx(float(metrics["rewards/rejected"]), rel=1e-12)
        assert numbers.margin == pytest.approx(float(metrics["rewards/margins"]), rel=1e-12, abs=1e-12)
        assert numbers.preference == pytest.approx(float(metrics["prob/preference"]), rel=1e-12)
        assert numbers.gradient_weight == pytest.approx(1.0 - numbers.preference, abs=1e-12)


def test_the_calculator_at_step_zero_and_at_the_extremes() -> None:
    start = learn.calculate(0.1, 0.0, 0.0)
    assert start.loss == pytest.approx(math.log(2)) and start.preference == 0.5 and start.gradient_weight == 0.5
    sure = learn.calculate(1.0, 500.0, -500.0)             # no overflow either way
    assert sure.loss == pytest.approx(0.0, abs=1e-300) and sure.preference == 1.0
    wrong = learn.calculate(1.0, -500.0, 500.0)
    assert wrong.loss == pytest.approx(1000.0) and wrong.gradient_weight == 1.0
    # the explainer's calculator defaults: β 0.1, log-ratios +1.5 and −0.5
    defaults = learn.calculate(0.1, 1.5, -0.5)
    assert (round(defaults.chosen_reward, 3), round(defaults.rejected_reward, 3)) == (0.15, -0.05)
    assert round(defaults.loss, 3) == 0.598
    assert learn.loss_curve(0.1, [2.0, 0.0]) == [pytest.approx(defaults.loss), pytest.approx(math.log(2))]
    with pytest.raises(ValueError):
        learn.calculate(0.0, 1.0, 0.0)


def test_the_calculator_imports_no_torch() -> None:
    code = "import sys, core.operations.learn as m; m.worked_example_steps(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def make_model_and_adapter(root):
    """The tiny model and a LoRA adapter attached the way training attaches it, with seeded
    non-zero weights (so the policy differs from the reference)."""
    from core.engine.modeling import load_for_training
    from core.engine.training_config import TrainingConfig

    model_dir = make_tiny_model_dir(root / "model")
    loaded = load_for_training(TrainingConfig(base_model=str(model_dir), device="cpu", lora_r=4))
    randomise_lora(loaded.model, seed=5, scale=0.3)
    loaded.model.save_pretrained(root / "adapter")
    return model_dir, root / "adapter"


def record_run(workspace, model_dir, adapter_dir, run_id: str = "run-a", beta: float = 0.3) -> None:
    """The adapter recorded as a finished run of the workspace (as training records one)."""
    from core.engine.training_config import TrainingConfig
    from storage.models import RunStatus
    from storage.runs import create_run, update_run

    config = TrainingConfig(base_model=str(model_dir), beta=beta, run_name="round 1")
    create_run(workspace, run_id, name="round 1", config_json=config.to_json(), base_model=config.base_model,
               run_dir=str(adapter_dir.parent), total_steps=1)
    update_run(workspace, run_id, status=RunStatus.COMPLETED, adapter_path=str(adapter_dir), step=1)


@pytest.fixture(scope="module")
def model_and_adapter(tmp_path_factory):
    return make_model_and_adapter(tmp_path_factory.mktemp("learn"))


def test_a_real_pairs_steps_are_the_evaluations_numbers(workspace, model_and_adapter) -> None:
    """explain_pair on every pair of a small workspace: the per-pair numbers average to what
    ``evaluate_adapter`` (the engine's evaluation, checked against TRL in test_trl_parity) reports."""
    from core.engine.evaluation import evaluate_adapter

    _model_dir, adapter_dir = model_and_adapter
    fill_workspace(workspace, 3)
    choices = learn.pair_choices(workspace)
    assert len(choices) == 3 and all(c.label.startswith("Question") for c in choices)
    messages = []
    explained = [learn.explain_pair(workspace, str(adapter_dir), c.pair_id, report=messages.append) for c in choices]
    assert messages and "loading" in messages[0]
    overall = evaluate_adapter(workspace, str(adapter_dir), split="all", batch_size=4)
    for key, value in (("loss", lambda n: n.loss), ("rewards/chosen", lambda n: n.chosen_reward),
                       ("rewards/rejected", lambda n: n.rejected_reward), ("rewards/margins", lambda n: n.margin)):
        mean = sum(value(e.numbers) for e in explained) / len(explained)
        assert mean == pytest.approx(overall[key], rel=1e-4, abs=1e-6), key
    first = explained[0]
    assert abs(first.numbers.margin) > 1e-3                      # a real, non-trivial adapter
    assert first.prompt.strip().startswith("Question") and first.chosen.startswith("Sure")
    assert first.held_out == (choices[0].split == "eval")     # the default run split is the stored one
    assert first.inputs.chosen_tokens > 0 and first.inputs.kind == "logp"
    assert len(first.steps) == 6 and first.steps[5].values["loss"] == first.numbers.loss
    assert f"{first.numbers.loss:.3f}" in first.steps[5].lines[0]

    # the same adapter recorded as a finished run (trained with β 0.3): listed, and its β is used
    record_run(workspace, _model_dir, adapter_dir)
    assert [(c.run_id, c.label) for c in learn.run_choices(workspace)] == [("run-a", "round 1 · step 1 (completed)")]
    by_run = learn.explain_pair(workspace, "run-a", first.pair_id)
    assert by_run.numbers.beta == 0.3
    assert by_run.numbers.chosen_logratio == pytest.approx(first.numbers.chosen_logratio, rel=1e-5)
    assert by_run.numbers.margin == pytest.approx(3 * first.numbers.margin, rel=1e-5)   # β 0.3 against 0.1
    # a read-only workspace (a viewer, a write-protected folder) still explains, without caching
    workspace.read_only_reason = "write-protected for this test"
    try:
        read_only = learn.explain_pair(workspace, "run-a", first.pair_id)
    finally:
        workspace.read_only_reason = None
    assert read_only.numbers == by_run.numbers
    with pytest.raises(learn.LearnError, match="pair 999"):
        learn.explain_pair(workspace, str(adapter_dir), 999)
    with pytest.raises(learn.LearnError, match="neither a run id"):
        learn.explain_pair(workspace, "no-such-run", choices[0].pair_id)


@pytest.mark.slow
# TRL (the reference, never used by the app) passes two names transformers 5 deprecated; as in test_trl_parity.
@pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_a_trained_runs_real_pair_matches_trl(workspace, tmp_path) -> None:
    """End to end: a short real run, its run id chosen like the Learn tab does, one pair's six steps
    equal to what TRL's DPOTrainer computes for that pair (same adapter, same β)."""
    from core.engine.trainer import train
    from core.engine.training_config import TrainingConfig
    from tests.test_trl_parity import trl_metrics

    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 12)
    run_id = train(workspace, TrainingConfig(base_model=str(model_dir), max_steps=6, batch_size=4, learning_rate=2e-2,
                                             beta=0.3, eval_split="0.25", eval_interval=100,
                                             checkpoint_interval=100, seed=1))
    assert [c.run_id for c in learn.run_choices(workspace)] == [run_id]
    pair = learn.pair_choices(workspace)[0]
    explained = learn.explain_pair(workspace, run_id, pair.pair_id)
    assert explained.held_out is None                          # the run drew its own held-out fraction

    from storage.runs import get_run

    example = next(e for e in build_training_set(workspace).examples if e.pair_id == pair.pair_id)
    theirs = trl_metrics(model_dir, get_run(workspace, run_id).adapter_path, [example], tmp_path, beta=0.3)
    n = explained.numbers
    ours = {"loss": n.loss, "rewards/chosen": n.chosen_reward, "rewards/rejected": n.rejected_reward,
            "rewards/margins": n.margin, "logps/chosen": explained.inputs.policy_chosen,
            "logps/rejected": explained.inputs.policy_rejected}
    assert abs(n.margin) > 1e-3
    for name, value in ours.items():
        assert value == pytest.approx(theirs[name], rel=1e-4, abs=1e-6), name
