"""Pair scores: an adapter's implicit-reward margin per pair, from the engine (checked against
the log-probs by hand) and from a real tiny run (its sign follows the trained preference)."""

from __future__ import annotations

import pytest
import torch

from core.engine.batching import collate, tokenize_examples
from core.engine.logprobs import completion_token_logps, sequence_logps
from core.engine.modeling import attach_lora, load_base_model, load_tokenizer
from core.engine.pair_scoring import pair_margins
from core.engine.reference_cache import compute_reference_logps
from core.engine.training_config import TrainingConfig
from storage.ingest import ImportRecord, import_records
from storage.pair_scores import load_pair_scores, pairs_to_score
from storage.verdicts import current_verdicts
from tests.tiny_models import make_tiny_model_dir, preference_triples, randomise_lora


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def _mixed_pairs(ws, n: int) -> list[int]:
    """Labelled pairs, the helpful answer chosen; on every other pair it is stored as response b."""
    records = []
    for i, (prompt, chosen, rejected) in enumerate(preference_triples(n)):
        responses, chosen_index = ([chosen, rejected], 0) if i % 2 == 0 else ([rejected, chosen], 1)
        records.append(ImportRecord(prompt=prompt, responses=responses, chosen=chosen_index, line=i + 1))
    return import_records(ws, records, "mixed.jsonl").pair_ids


def test_margins_are_beta_times_the_difference_of_log_ratios(workspace, model_dir) -> None:
    _mixed_pairs(workspace, 6)
    config = TrainingConfig(base_model=str(model_dir), beta=0.25, max_length=128, reference_batch_size=4)
    tokenizer = load_tokenizer(str(model_dir))
    model = randomise_lora(attach_lora(load_base_model(str(model_dir), torch.device("cpu"), torch.float32), config),
                           seed=3, scale=0.5)
    pairs, _dropped = tokenize_examples(tokenizer, pairs_to_score(workspace), config.max_length)
    rows = compute_reference_logps(model, pairs, tokenizer.eos_token_id, 4, torch.device("cpu"))
    reference = {row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows}
    batches = []
    margins = pair_margins(model, pairs, reference, config, tokenizer.eos_token_id, torch.device("cpu"),
                           batch_size=4, on_batch=lambda scored, done, total: batches.append((len(scored), done, total)))
    assert batches == [(4, 1, 2), (2, 2, 2)] and sorted(margins) == [p.pair_id for p in pairs]
    with torch.no_grad():
        for pair in pairs:
            a_logp, b_logp = sequence_logps(completion_token_logps(model, collate([pair], tokenizer.eos_token_id)))
            ref_a, ref_b = reference[pair.example_hash]
            expected = 0.25 * ((float(a_logp) - ref_a) - (float(b_logp) - ref_b))
            assert margins[pair.pair_id] == pytest.approx(expected, abs=1e-4)
    assert any(abs(m) > 1e-3 for m in margins.values())   # the adapter differs from the base
    assert pair_margins(model, pairs, reference, config, tokenizer.eos_token_id, torch.device("cpu"),
                        should_stop=lambda: True) == {}


@pytest.mark.slow
def test_a_trained_run_prefers_the_chosen_side_of_its_training_pairs(workspace, model_dir, capsys) -> None:
    from core.engine.trainer import train
    from core.operations.pair_scores import score_pairs
    from main import main

    pair_ids = _mixed_pairs(workspace, 24)
    run_id = train(workspace, TrainingConfig(base_model=str(model_dir), max_steps=12, batch_size=8,
                                             learning_rate=5e-3, eval_split="0", eval_interval=0,
                                             checkpoint_interval=0, seed=1, max_length=128))
    events = []
    outcome = score_pairs(workspace, run_id, open_only=False, progress=events.append)
    assert (outcome.scored, outcome.stopped) == (24, False) and events
    margins = load_pair_scores(workspace, run_id)
    with workspace.session() as session:
        chosen = {v.pair_id: v.choice.value for v in current_verdicts(session)}
    assert sorted(margins) == pair_ids
    # The helpful answer is a on even pairs, b on odd ones: the margin's sign follows it.
    assert all((margins[p] > 0) == (chosen[p] == "a") for p in pair_ids)
    assert {chosen[p] for p in pair_ids} == {"a", "b"}
    # Open pairs only (none: every pair is labelled), and nothing scored twice.
    assert score_pairs(workspace, run_id).scored == 0
    assert score_pairs(workspace, run_id, open_only=False).already == 24
    # Headless: the same operation; a run that does not exist is one line and exit code 2.
    assert main(["score-pairs", str(workspace.location), run_id, "--all", "--rescore", "--quiet"]) == 0
    assert "Scored 24 pairs" in capsys.readouterr().out
    assert main(["score-pairs", str(workspace.location), "no-such-run"]) == 2
    assert capsys.readouterr().err.startswith("error: no run 'no-such-run'")
