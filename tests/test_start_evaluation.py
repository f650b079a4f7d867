"""The step-0 evaluation from the reference values alone equals a real forward evaluation of the
fresh policy (core.engine.start_evaluation), for every loss type, the SFT term and keep_end cuts."""

from __future__ import annotations

import pytest

from core.engine.batching import tokenize_examples
from core.engine.evaluation import evaluate_pairs
from core.engine.modeling import load_for_training
from core.engine.reference_cache import compute_reference_logps
from core.engine.start_evaluation import metrics_at_start
from core.engine.training_config import TrainingConfig
from tests.tiny_models import example, make_tiny_model_dir, preference_triples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def loaded(model_dir):
    """A fresh LoRA on the tiny model (its adapter dropout is off in evaluation)."""
    return load_for_training(TrainingConfig(base_model=str(model_dir), lora_dropout=0.1, seed=5).validate(), None)


@pytest.mark.parametrize("overrides", [
    {},
    {"loss_type": "ipo"},
    {"loss_type": "hinge", "sft_weight": 0.5},
    {"label_smoothing": 0.1, "max_length": 20, "truncation_mode": "keep_end"},   # prompts cut away: start 0
])
def test_metrics_at_start_equal_a_forward_evaluation(model_dir, loaded, overrides) -> None:
    config = TrainingConfig(base_model=str(model_dir), lora_dropout=0.1, seed=5, **overrides).validate()
    examples = [example(i, p, c, r) for i, (p, c, r) in enumerate(preference_triples(12, False))]
    pairs, _dropped = tokenize_examples(loaded.tokenizer, examples, config.max_length, config.truncation_mode)
    if config.truncation_mode == "keep_end":
        assert any(p.chosen_start == 0 or p.rejected_start == 0 for p in pairs)
    # the batches of the evaluation: the same float rounding (a margin of 1e-9 either way is no signal)
    rows = compute_reference_logps(loaded.model, pairs, loaded.tokenizer.pad_token_id, config.reference_batch_size,
                                   loaded.device)
    reference = {row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows}

    forward = evaluate_pairs(loaded.model, pairs, reference, config, loaded.tokenizer.pad_token_id, loaded.device)
    derived = metrics_at_start(pairs, reference, config)

    assert set(derived) == set(forward)
    for name, value in forward.items():
        assert derived[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert derived["rewards/margins"] == 0.0 and derived["rewards/accuracies"] == 0.0
