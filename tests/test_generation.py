"""The one sampler (core.engine.generation): batched over prompts and samples, left-padded over a
KV cache, seeded per reply, greedy at temperature 0, cut to the top-p nucleus, cancellable."""

from __future__ import annotations

import pytest
import torch

from core.demo.demo_workspace import held_out_prompts
from core.engine.bundled_models import DEMO_MODEL
from core.engine.generation import (GenerationProgress, SamplingSettings, generate_replies, load_generator,
                                    next_tokens, prompt_text)


@pytest.fixture(scope="module")
def demo():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)     # a tiny model: one thread is fastest, and fair to a busy machine
    yield load_generator(DEMO_MODEL, device="cpu")
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def prompts():
    return held_out_prompts(6)


def test_replies_come_n_per_prompt_in_order_and_end_at_the_end_of_turn(demo, prompts):
    model, tokenizer = demo
    replies = generate_replies(model, tokenizer, prompts[:3], SamplingSettings(n=2, max_new_tokens=48, seed=1))
    assert [r.prompt_index for r in replies] == [0, 0, 1, 1, 2, 2]
    assert [r.prompt for r in replies] == [p for p in prompts[:3] for _ in range(2)]
    for reply in replies:
        assert reply.token_ids and len(reply.token_ids) <= 48
        assert reply.finished == (reply.token_ids[-1] == tokenizer.eos_token_id)
        assert tokenizer.eos_token_id not in reply.token_ids[:-1]
        assert reply.text and "<|end|>" not in reply.text
    assert any(r.finished for r in replies)


def test_the_same_seed_gives_the_same_replies_whatever_the_batch_size(demo, prompts):
    model, tokenizer = demo
    settings = SamplingSettings(temperature=1.0, top_p=0.95, max_new_tokens=24, seed=7, n=2)
    batched = generate_replies(model, tokenizer, prompts, settings, batch_size=12)
    assert generate_replies(model, tokenizer, prompts, settings, batch_size=5) == batched
    other_seed = generate_replies(model, tokenizer, prompts, SamplingSettings(**{**settings.as_dict(), "seed": 8}))
    assert [r.text for r in other_seed] != [r.text for r in batched]
    # The n samples of one prompt are different draws, not copies.
    assert len({r.text for r in batched}) > len(prompts)


def test_left_padding_gives_a_greedy_reply_equal_to_the_prompt_alone(demo, prompts):
    model, tokenizer = demo
    lengths = {len(tokenizer(prompt_text(tokenizer, p), add_special_tokens=False)["input_ids"]) for p in prompts}
    assert len(lengths) > 1    # the batch really is padded
    greedy = SamplingSettings(temperature=0, max_new_tokens=32)
    together = generate_replies(model, tokenizer, prompts, greedy, batch_size=len(prompts))
    alone = [generate_replies(model, tokenizer, [p], greedy)[0] for p in prompts]
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    # Greedy decoding is the model's own argmax: n greedy samples are all the same reply.
    twice = generate_replies(model, tokenizer, prompts[:1], SamplingSettings(temperature=0, max_new_tokens=32, n=2))
    assert twice[0].token_ids == twice[1].token_ids == alone[0].token_ids


def test_chat_messages_are_prompts_too(demo, prompts):
    model, tokenizer = demo
    greedy = SamplingSettings(temperature=0, max_new_tokens=16)
    as_text = generate_replies(model, tokenizer, prompts[:1], greedy)
    as_chat = generate_replies(model, tokenizer, [[{"role": "user", "content": prompts[0]}]], greedy)
    assert as_chat[0].token_ids == as_text[0].token_ids


def test_top_p_keeps_the_nucleus_and_temperature_sharpens():
    logits = torch.tensor([[3.0, 2.0, 1.0, -2.0, -3.0]])   # probabilities ~ .66 .24 .09 .004 .002
    draws = lambda settings, count=400: [int(next_tokens(logits, settings, [torch.Generator().manual_seed(i)]))
                                          for i in range(count)]
    nucleus = draws(SamplingSettings(temperature=1.0, top_p=0.8))
    assert set(nucleus) == {0, 1}            # .66 + .24 reaches 0.8: the rest is cut
    everything = draws(SamplingSettings(temperature=1.0, top_p=1.0), 2000)
    assert {0, 1, 2} <= set(everything)
    assert 0.6 < everything.count(0) / 2000 < 0.72
    cold = draws(SamplingSettings(temperature=0.3, top_p=1.0))
    assert cold.count(0) / 400 > 0.9         # low temperature: nearly always the top token
    assert draws(SamplingSettings(temperature=0.0), 5) == [0] * 5
    assert set(draws(SamplingSettings(temperature=1.0, top_p=1e-6), 50)) == {0}   # at least one token is kept


def test_progress_counts_tokens_and_cancel_stops_between_steps(demo, prompts):
    model, tokenizer = demo
    seen: list[GenerationProgress] = []
    settings = SamplingSettings(n=2, max_new_tokens=24)
    replies = generate_replies(model, tokenizer, prompts, settings, batch_size=4, progress=seen.append)
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == len(prompts) * 2
    assert seen[-1].tokens == sum(len(r.token_ids) for r in replies) and seen[-1].seconds > 0
    assert seen[-1].tokens_per_second > 0
    assert [p.tokens for p in seen] == sorted(p.tokens for p in seen)

    calls = []

    def stop_after_the_first_batch() -> bool:
        calls.append(1)
        return len(calls) > 30       # the first batch ends within 24 steps; the second is stopped mid-way
    stopped = generate_replies(model, tokenizer, prompts, settings, batch_size=4, should_stop=stop_after_the_first_batch)
    assert stopped == replies[:4]


def test_bad_settings_are_refused_in_words():
    assert SamplingSettings().problems() == []
    problems = SamplingSettings(temperature=-1, top_p=0, max_new_tokens=0, n=0).problems()
    assert len(problems) == 4 and "top-p" in problems[1]
    with pytest.raises(ValueError, match="temperature"):
        generate_replies(None, None, ["x"], SamplingSettings(temperature=-0.5))
