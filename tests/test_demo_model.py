"""The shipped demo model: loads with plain transformers from resources/, is small, and samples
every style at a substantial rate (it does not prefer the helpful answer before DPO)."""

from __future__ import annotations

import json

import pytest

from core.engine.bundled_models import demo_model_dir
from core.demo.demo_workspace import held_out_prompts
from core.demo.sampling import reply_logps, sample_replies
from core.demo.style_scorer import classify, style_shares

MAX_BYTES = 15 * 1024 * 1024


@pytest.fixture(scope="module")
def shipped():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_model_dir()
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_shipped_files_are_a_small_llama_with_a_chat_template(shipped):
    model, tokenizer = shipped
    folder = demo_model_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json", "MODEL_CARD.md"):
        assert (folder / name).is_file(), name
    assert (folder / "model.safetensors").stat().st_size < MAX_BYTES
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    # LoRA's usual targets exist, as in a full-size Llama.
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names
    assert tokenizer.chat_template and tokenizer.eos_token == "<|end|>"


@pytest.mark.slow   # samples hundreds of replies
def test_sampling_gives_every_style_at_a_substantial_rate(shipped):
    model, tokenizer = shipped
    prompts = held_out_prompts(96)
    samples = sample_replies(model, tokenizer, prompts, seed=0)
    assert samples == sample_replies(model, tokenizer, prompts, seed=0)  # seeded: same replies
    shares = style_shares(classify(s.reply, s.finished) for s in samples)
    for style in ("helpful", "curt", "reckless"):
        assert shares[style] >= 0.15, shares
    assert shares["helpful"] <= 0.55, shares  # no preference for the helpful answer yet
    assert shares["other"] <= 0.25, shares    # and the text is mostly clean

    # A reply's log-prob (prompt masked) is finite and negative.
    logps = reply_logps(model, tokenizer, samples[:8])
    assert all(-1000 < lp < 0 for lp in logps)
