"""The split attention of packed pairs (core.engine.packed_attention) computes what the masked
sdpa kernel computes, on a real tiny model: forward, gradients, checkpointed recomputation, the
layouts' corner cases, and every path that has no pair layout."""

from __future__ import annotations

import pytest
import torch

from core.engine.batching import TokenizedPair, collate
from core.engine.logprobs import completion_token_logps, sequence_logps
from core.engine.packed_attention import NAME, one_row, use_split_attention
from core.engine.pair_packing import collate_packed
from tests.tiny_models import lora_model, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("split") / "model", hidden_size=64, layers=2)


def attention_of(model, name: str):
    if name == NAME:
        assert use_split_attention(model.get_base_model())
    else:
        model.get_base_model().set_attn_implementation(name)
    assert model.get_base_model().config._attn_implementation == name


def pair(pair_id, chosen, chosen_start, rejected, rejected_start):
    return TokenizedPair(pair_id, f"h{pair_id}", tuple(chosen), chosen_start, tuple(rejected), rejected_start)


# Every shape a packed row can take: a long shared prompt, a rejected answer that is a prefix of the
# chosen one (no rejected part), a chosen answer that is a prefix of the rejected one, no shared token
# at all (keep_end cut both prompts differently), and a one-token completion.
PAIRS = [
    pair(0, list(range(10, 40)), 12, list(range(10, 22)) + list(range(100, 125)), 12),
    pair(1, list(range(50, 70)), 5, list(range(50, 60)), 5),
    pair(2, list(range(70, 80)), 4, list(range(70, 80)) + [5, 6, 7], 4),
    pair(3, [9] + list(range(130, 140)), 0, [8] + list(range(140, 146)), 0),
    pair(4, [11, 12, 13, 14], 3, [11, 12, 13, 15], 3),
]


def test_one_row_drops_the_padding_and_keeps_each_pairs_layout():
    batch = collate_packed(PAIRS, pad_token_id=0)
    ids, positions, mask, predictors = one_row(batch)
    ends = [end for _, _, end in batch.segments]
    assert ids.shape == (1, sum(ends)) and sum(ends) < batch.input_ids.numel()       # padding gone
    assert [s[0] for s in mask.pair_segments] == [sum(ends[:i]) for i in range(len(ends))]
    flat = batch.input_ids.reshape(-1)
    assert ids[0, predictors].tolist() == flat[batch.predictor_index].tolist()       # same predictors
    start = 0
    for row, end in enumerate(ends):                                                 # block-diagonal
        assert torch.equal(mask[0, 0, start:start + end, start:start + end], batch.attention_mask[row, 0, :end, :end])
        assert not mask[0, 0, start:start + end, start + end:].any()
        assert torch.equal(positions[0, start:start + end], batch.position_ids[row, :end])
        start += end


def test_split_attention_gives_the_masked_kernels_logps_and_gradients(model_dir, monkeypatch):
    model = lora_model(model_dir, seed=5)
    batch, unpacked = collate_packed(PAIRS, pad_token_id=0), collate(PAIRS, pad_token_id=0)
    calls = []
    import core.engine.packed_attention as packed_attention

    real_sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(packed_attention.torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(a[0].shape[2]) or real_sdpa(*a, **k))
    results = {}
    for name in ("sdpa", NAME):
        attention_of(model, name)
        calls.clear()
        model.zero_grad(set_to_none=True)
        token_logps = completion_token_logps(model, batch)
        chosen, rejected = sequence_logps(token_logps)
        torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results[name] = (token_logps.detach(), grads, list(calls))
    (masked, masked_grads, masked_calls), (split, split_grads, split_calls) = results["sdpa"], results[NAME]
    # The split ran: per layer one call per chosen part and per non-empty rejected part, queries no longer
    # than a pair's row (the masked path makes one call over the padded width).
    layers = 2
    rejected_parts = sum(1 for _, chosen_end, end in batch.segments if end > chosen_end)
    assert rejected_parts == len(PAIRS) - 1                        # pair 1's rejected is inside its prefix
    assert len(split_calls) == layers * (len(PAIRS) + rejected_parts)
    assert masked_calls == [batch.input_ids.shape[1]] * layers
    assert max(split_calls) <= max(end for _, _, end in batch.segments)
    torch.testing.assert_close(split, masked, rtol=0, atol=1e-5)
    with torch.no_grad():
        unpacked_sums = sequence_logps(completion_token_logps(model, unpacked))
    torch.testing.assert_close(sequence_logps(split), unpacked_sums, rtol=1e-5, atol=1e-5)
    assert split_grads.keys() == masked_grads.keys() and split_grads
    for name in split_grads:
        torch.testing.assert_close(split_grads[name], masked_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_checkpointed_recomputation_takes_the_same_split(model_dir):
    """Non-reentrant checkpointing re-runs each layer in the backward and checks it saved the same
    tensors: the layout travels on the mask object, so the recomputation splits the same way."""
    from core.engine.modeling import _prepared_for_training
    from core.engine.training_config import TrainingConfig

    batch = collate_packed(PAIRS, pad_token_id=0)
    grads = []
    for checkpointed in (False, True):
        model = _prepared_for_training(lora_model(model_dir, seed=5),   # as training prepares it (lean MLPs too)
                                       TrainingConfig(base_model="m", gradient_checkpointing=checkpointed))
        attention_of(model, NAME)
        assert model.get_base_model().is_activation_checkpointing == checkpointed
        model.train()
        chosen, rejected = sequence_logps(completion_token_logps(model, batch))
        (chosen - rejected).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_paths_without_a_pair_layout_are_sdpas_own(model_dir):
    """Unpacked batches (a 2D padding mask) and generation go to transformers' sdpa function."""
    model = lora_model(model_dir, seed=5)
    unpacked = collate(PAIRS, pad_token_id=0)
    prompt = torch.tensor([[5, 6, 7, 8, 9]])
    outputs = {}
    for name in ("sdpa", NAME):
        attention_of(model, name)
        with torch.no_grad():
            outputs[name] = (completion_token_logps(model, unpacked),
                             model.generate(input_ids=prompt, max_new_tokens=6, do_sample=False, pad_token_id=0))
    torch.testing.assert_close(outputs[NAME][0], outputs["sdpa"][0], rtol=0, atol=0)
    assert outputs[NAME][1].tolist() == outputs["sdpa"][1].tolist()


def test_cpu_models_load_with_the_split_and_other_kinds_are_left_alone(model_dir):
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import load_base_model

    loaded = load_base_model(str(model_dir), device=torch.device("cpu"), dtype=torch.float32)
    assert loaded.config._attn_implementation == (NAME if not torch.cuda.is_available() else "sdpa")
    eager = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager")
    assert not use_split_attention(eager) and eager.config._attn_implementation == "eager"
