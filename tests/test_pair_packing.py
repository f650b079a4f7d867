"""The packed pair layout (one sequence per pair, shared prefix once) gives the unpacked
layout's numbers: log-probs, gradients, and a whole training run, on real tiny models."""

from __future__ import annotations


import pytest
import torch

from core.engine.batching import TokenizedPair, collate, common_prefix_length, tokenize_examples
from core.engine.logprobs import completion_token_logps, sequence_logps, supports_packed_pairs
from core.engine.packed_attention import NAME as PACKED_SDPA
from core.engine.pair_packing import collate_packed
from core.engine.training_config import ConfigError, TrainingConfig
from tests.tiny_models import example as Example
from tests.tiny_models import lora_model, make_tiny_model_dir, preference_triples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("packing") / "model", hidden_size=64, layers=2)


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def examples(chat: bool) -> list[Example]:
    """Pairs of different lengths (so the batch is padded), completions that share their first
    words, and one pair whose completions are equal up to where a short max_length cuts them."""
    found = [Example(i, *triple) for i, triple in enumerate(preference_triples(5, chat))]
    prompt, chosen, _ = preference_triples(1, chat)[0]
    if chat:
        shared = [{"role": "assistant", "content": chosen[0]["content"] + " And then rest."}]
    else:
        shared = chosen + " And then rest."
    found.append(Example(90, prompt, chosen, shared))
    if chat:
        found.append(Example(91, [{"role": "user", "content": "Tea?"}], [{"role": "assistant", "content": "Yes."}],
                             [{"role": "assistant", "content": "No."}]))
    else:
        sure = "Sure, here is how to"
        found.append(Example(91, prompt, sure + " do it.", sure + " not bother."))
        found.append(Example(92, "Tea?", " Yes.", " No."))
    return found


def token_and_sequence_logps(model, batch):
    token_logps = completion_token_logps(model, batch)               # (2B, W)
    return token_logps[batch.loss_mask.bool()], sequence_logps(token_logps)


@pytest.mark.parametrize("attention", ["sdpa", "eager", PACKED_SDPA])
@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
@pytest.mark.parametrize("max_length, mode", [(512, "keep_start"), (45, "keep_start"), (45, "keep_end")],
                         ids=["whole", "cut-end", "cut-prompt"])
def test_packed_logps_equal_unpacked(model_dir, tokenizer, attention, chat, max_length, mode) -> None:
    model = lora_model(model_dir, attention)
    assert supports_packed_pairs(model)
    pairs, _ = tokenize_examples(tokenizer, examples(chat), max_length, mode)
    assert len(pairs) >= 5
    packed_lengths = {len(p.chosen_ids) + len(p.rejected_ids) - common_prefix_length(p.chosen_ids, p.rejected_ids)
                      for p in pairs}
    assert len(packed_lengths) > 1                                             # rows really padded
    if max_length < 512:
        assert any(len(p.chosen_ids) == max_length for p in pairs)             # really truncated
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    unpacked, packed = collate(pairs, pad), collate_packed(pairs, pad)
    assert packed.input_ids.shape[0] == len(pairs) and unpacked.input_ids.shape[0] == 2 * len(pairs)
    assert packed.completion_tokens().tolist() == unpacked.completion_tokens().tolist()
    assert packed.real_tokens() == unpacked.real_tokens()

    with torch.no_grad():
        tokens_u, (chosen_u, rejected_u) = token_and_sequence_logps(model, unpacked)
        tokens_p, (chosen_p, rejected_p) = token_and_sequence_logps(model, packed)
    assert tokens_p.shape == tokens_u.shape
    torch.testing.assert_close(tokens_p, tokens_u, rtol=0, atol=1e-5)
    torch.testing.assert_close(chosen_p, chosen_u, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rejected_p, rejected_u, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", PACKED_SDPA])
def test_packed_gradients_equal_unpacked(model_dir, tokenizer, attention) -> None:
    model = lora_model(model_dir, attention)
    pairs, _ = tokenize_examples(tokenizer, examples(False), 512)
    pad = tokenizer.eos_token_id
    gradients = []
    for batch in (collate(pairs, pad), collate_packed(pairs, pad)):
        model.zero_grad(set_to_none=True)
        chosen, rejected = sequence_logps(completion_token_logps(model, batch))
        torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean().backward()
        gradients.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    unpacked, packed = gradients
    assert unpacked.keys() == packed.keys() and unpacked
    for name in unpacked:
        torch.testing.assert_close(packed[name], unpacked[name], rtol=1e-4, atol=1e-6, msg=name)


def test_layout_shares_the_prefix_and_hides_chosen_from_rejected() -> None:
    # prompt (10, 11), chosen completion (20, 21, 22), rejected completion (20, 30)
    pair = TokenizedPair(pair_id=1, example_hash="h", chosen_ids=(10, 11, 20, 21, 22), chosen_start=2,
                         rejected_ids=(10, 11, 20, 30), rejected_start=2)
    short = TokenizedPair(pair_id=2, example_hash="g", chosen_ids=(10, 40), chosen_start=1,
                          rejected_ids=(10, 41), rejected_start=1)
    batch = collate_packed([pair, short], pad_token_id=0)
    assert batch.input_ids.tolist() == [[10, 11, 20, 21, 22, 30], [10, 40, 41, 0, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 3], [0, 1, 1, 0, 0, 0]]
    mask = batch.attention_mask[0, 0]
    assert mask[5].tolist() == [True, True, True, False, False, True]   # rejected "30" sees prefix + itself
    assert mask[4].tolist() == [True, True, True, True, True, False]    # chosen is plain causal
    assert batch.attention_mask[1, 0, 2].tolist() == [True, False, True, False, False, False]
    # Rejected "20" and "30" are predicted from positions 1 and 2 (shared), chosen "21" from 2, ...
    assert batch.predictor_index.tolist() == [1, 2, 3, 6, 1, 2, 6]
    assert batch.labels.tolist() == [20, 21, 22, 40, 20, 30, 41]
    assert batch.loss_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]]


def test_models_that_cannot_take_the_mask_use_the_unpacked_layout() -> None:
    from transformers import MistralConfig, MistralForCausalLM

    small = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1)
    sliding = MistralForCausalLM(MistralConfig(sliding_window=8, **small))
    full = MistralForCausalLM(MistralConfig(sliding_window=None, **small))
    assert not supports_packed_pairs(sliding)        # the packed mask would replace the window
    assert supports_packed_pairs(full)
    full.config._attn_implementation = "flash_attention_2"
    assert not supports_packed_pairs(full)            # takes no 4D mask


def test_packed_pairs_setting() -> None:
    assert TrainingConfig().packed_pairs is True
    assert TrainingConfig(base_model="m").with_overrides(["packed_pairs=off"]).validate().packed_pairs is False
    with pytest.raises(ConfigError, match="packed_pairs"):
        TrainingConfig(base_model="m").with_overrides(["packed_pairs=maybe"])


@pytest.mark.slow
def test_training_runs_match_with_and_without_packing(workspace, tmp_path) -> None:
    from storage.metrics import read_metrics
    from core.engine.trainer import train
    from tests.tiny_models import fill_workspace

    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 12)
    curves = []
    for packed in (False, True):
        config = TrainingConfig(base_model=str(model_dir), max_steps=3, batch_size=4, learning_rate=5e-3,
                                eval_split="0.25", eval_interval=0, checkpoint_interval=0, seed=2,
                                packed_pairs=packed, device="cpu")
        run_id = train(workspace, config)
        curves.append((read_metrics(workspace, run_id, split="train"), read_metrics(workspace, run_id, split="eval")))
    (train_u, eval_u), (train_p, eval_p) = curves
    for name in ("loss", "rewards/margins", "logps/chosen", "logps/rejected", "grad_norm"):
        assert [s for s, _ in train_p[name]] == list(range(1, 4))
        assert [v for _, v in train_p[name]] == pytest.approx([v for _, v in train_u[name]], rel=1e-4, abs=1e-5), name
    for name in ("loss", "rewards/margins", "logps/chosen"):
        assert [v for _, v in eval_p[name]] == pytest.approx([v for _, v in eval_u[name]], rel=1e-4, abs=1e-5), name


def test_reference_pass_gives_the_same_values_packed_or_not(model_dir, tokenizer) -> None:
    from core.engine.reference_cache import compute_reference_logps

    model = lora_model(model_dir, "sdpa")
    pairs, _ = tokenize_examples(tokenizer, examples(True), 512)
    rows = [compute_reference_logps(model, pairs, tokenizer.eos_token_id, 4, torch.device("cpu"), packed_pairs=packed)
            for packed in (False, True)]
    assert [r["example_hash"] for r in rows[0]] == [r["example_hash"] for r in rows[1]]
    for unpacked, packed in zip(*rows):
        assert packed["chosen_tokens"] == unpacked["chosen_tokens"]
        assert packed["rejected_tokens"] == unpacked["rejected_tokens"]
        assert packed["chosen_logp"] == pytest.approx(unpacked["chosen_logp"], rel=1e-5)
        assert packed["rejected_logp"] == pytest.approx(unpacked["rejected_logp"], rel=1e-5)
    assert model.training  # handed back as it came
