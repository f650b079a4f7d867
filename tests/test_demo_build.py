"""The build of the demo model from nothing (shortened, so it fits CI): same settings, same weights."""

from __future__ import annotations

import json

from core.demo.pretrain import BuildSettings, build_demo_model
from main import main


def test_quick_build_is_deterministic_and_loads_with_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    first = build_demo_model(tmp_path / "a", BuildSettings.quick(), log=lambda _: None)
    assert main(["build-demo-model", "--quick", "--out", str(tmp_path / "b")]) == 0
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

    assert first.final_loss < first.first_loss  # it did learn something in 12 steps
    report = json.loads((tmp_path / "a" / "build_report.json").read_text())
    assert report["settings"]["steps"] == 12 and set(report["style_shares"]) >= {"helpful", "curt", "reckless"}
    assert "python main.py build-demo-model" in (tmp_path / "a" / "MODEL_CARD.md").read_text()

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert isinstance(model, LlamaForCausalLM)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "How do I save money?"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == "<|bos|><|user|>\nHow do I save money?<|end|><|assistant|>\n"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|end|>")


def test_other_seed_gives_other_weights(tmp_path):
    from dataclasses import replace

    build_demo_model(tmp_path / "a", BuildSettings.quick(), log=lambda _: None)
    build_demo_model(tmp_path / "b", replace(BuildSettings.quick(), seed=1), log=lambda _: None)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "b" / "model.safetensors").read_bytes()
