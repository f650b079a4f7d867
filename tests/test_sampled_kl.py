"""The sampled sequence-level KL (core.engine.sampled_kl) against the exact KL by enumeration."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from core.engine.generation import SamplingSettings, generate_replies, stop_token_ids  # noqa: E402
from core.engine.sampled_kl import (  # noqa: E402
    KLCancelled,
    estimate_kl,
    kl_from_gaps,
    prompt_token_ids,
    sequence_logps,
)
from tests.tiny_models import make_tiny_model_dir, randomise_lora  # noqa: E402

PROMPTS = ["how do I make tea?", "Please explain how a bicycle works."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_model_dir(tmp_path_factory.mktemp("tiny_kl"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    policy = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                            LoraConfig(r=4, lora_alpha=8, target_modules=["v_proj", "down_proj", "lm_head"],
                                       lora_dropout=0.0))
    randomise_lora(policy, seed=3, scale=0.3)
    policy.eval()
    return SimpleNamespace(tokenizer=tokenizer, base=base, policy=policy)


def _next_logps(model, rows: list[list[int]]) -> torch.Tensor:
    """log p(. | row) for equal-length rows: (len(rows), V)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(rows, dtype=torch.long)).logits[:, -1].double()
    return torch.log_softmax(logits, dim=-1)


def exact_two_token_kl(policy, reference, prompt_ids: list[int], stops: set[int]) -> float:
    """KL over replies of at most two tokens (a stop token first ends the reply), by
    enumerating the whole vocabulary at both positions."""
    p1, q1 = _next_logps(policy, [prompt_ids])[0], _next_logps(reference, [prompt_ids])[0]
    kl = float((p1.exp() * (p1 - q1)).sum())
    rows = [prompt_ids + [t] for t in range(p1.shape[0])]
    p2, q2 = _next_logps(policy, rows), _next_logps(reference, rows)   # (V, V)
    second = (p2.exp() * (p2 - q2)).sum(dim=1)                         # (V,) KL of the 2nd token given the 1st
    second[sorted(stops)] = 0.0                                        # the reply ended at its 1st token
    return kl + float((p1.exp() * second).sum())


def test_kl_from_gaps_is_the_mean_and_its_standard_error():
    estimate = kl_from_gaps([1.0, 2.0, 3.0, 6.0], tokens=8)
    assert estimate.mean == 3.0 and estimate.n == 4
    assert estimate.stderr == pytest.approx(math.sqrt(14 / 3 / 4))
    assert estimate.per_token == pytest.approx(1.5)
    assert kl_from_gaps([0.5]).stderr == 0.0 and kl_from_gaps([]).n == 0


def test_sequence_logps_match_a_direct_forward(tiny):
    prompt = prompt_token_ids(tiny.tokenizer, PROMPTS[0])
    reply = [5, 17, tiny.tokenizer.eos_token_id]
    direct = _next_logps(tiny.base, [prompt])[0][reply[0]]
    direct += _next_logps(tiny.base, [prompt + reply[:1]])[0][reply[1]]
    direct += _next_logps(tiny.base, [prompt + reply[:2]])[0][reply[2]]
    shorter = prompt_token_ids(tiny.tokenizer, "hi")
    got = sequence_logps(tiny.base, [prompt, shorter], [reply, [7]], tiny.tokenizer.eos_token_id)
    assert got[0] == pytest.approx(float(direct), abs=1e-4)
    assert got[1] == pytest.approx(float(_next_logps(tiny.base, [shorter])[0][7]), abs=1e-4)


def test_a_model_against_itself_has_kl_exactly_zero(tiny):
    settings = SamplingSettings(max_new_tokens=6, n=4)
    itself = estimate_kl(tiny.base, tiny.tokenizer, PROMPTS, settings, reference=tiny.base)
    assert (itself.mean, itself.stderr, itself.n) == (0.0, 0.0, 8)
    assert itself.tokens >= 8
    with tiny.policy.disable_adapter():   # the base under a peft wrapper, against its disabled adapter
        wrapped = estimate_kl(tiny.policy, tiny.tokenizer, PROMPTS, settings)
    assert (wrapped.mean, wrapped.stderr) == (0.0, 0.0)


@pytest.mark.slow
def test_sampled_kl_matches_the_exact_kl_of_a_perturbed_copy(tiny):
    eos = stop_token_ids(tiny.policy, tiny.tokenizer)
    with tiny.policy.disable_adapter():
        exact = [exact_two_token_kl(tiny.policy, tiny.policy, prompt_token_ids(tiny.tokenizer, p), eos)
                 for p in PROMPTS]
    assert exact == [0.0, 0.0]
    exact = [exact_two_token_kl(tiny.policy, tiny.base, prompt_token_ids(tiny.tokenizer, p), eos) for p in PROMPTS]
    target = sum(exact) / len(exact)
    assert target > 0.3    # the perturbation is large enough to measure
    seen = []
    estimate = estimate_kl(tiny.policy, tiny.tokenizer, PROMPTS, SamplingSettings(max_new_tokens=2, n=150),
                           batch_size=64, progress=lambda *a: seen.append(a[0]))
    assert estimate.n == 300
    assert abs(estimate.mean - target) < 4 * estimate.stderr, (estimate, target)
    assert estimate.stderr < target          # a few hundred samples pin it down
    # The same with the base as an explicit reference model: the same samples, the same numbers.
    explicit = estimate_kl(tiny.policy, tiny.tokenizer, PROMPTS, SamplingSettings(max_new_tokens=2, n=150),
                           reference=tiny.base, batch_size=64)
    assert explicit.mean == pytest.approx(estimate.mean, abs=1e-6)
    assert {"sampling", "log-probs, policy", "log-probs, reference"} <= set(seen)


def test_temperature_and_top_p_are_set_to_one_and_stop_cancels(tiny):
    seen = []

    def sampler(model, tokenizer, prompts, settings, **options):
        seen.append((settings.temperature, settings.top_p, settings.max_new_tokens))
        return generate_replies(model, tokenizer, prompts, settings, **options)

    estimate_kl(tiny.policy, tiny.tokenizer, PROMPTS, SamplingSettings(temperature=0.3, top_p=0.5, max_new_tokens=3),
                sampler=sampler)
    assert seen == [(1.0, 1.0, 3)]
    with pytest.raises(KLCancelled):
        estimate_kl(tiny.policy, tiny.tokenizer, PROMPTS, SamplingSettings(), should_stop=lambda: True)
    with pytest.raises(ValueError, match="reference"):
        estimate_kl(tiny.base, tiny.tokenizer, PROMPTS, SamplingSettings())
