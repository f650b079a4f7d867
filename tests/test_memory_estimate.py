"""The memory estimate: parameter counts from config.json match real models; the fit verdict."""

from __future__ import annotations

import pytest

from core.engine.memory_estimate import (DeviceMemory, ModelShape, estimate_for_config, estimate_training_memory,
                                  judge_fit, read_model_config, system_memory)
from core.engine.training_config import TrainingConfig
from tests.tiny_models import make_tiny_model_dir


def test_parameter_counts_match_a_real_llama_and_its_lora_adapter(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import quiet_peft_wrap

    folder = make_tiny_model_dir(tmp_path / "tiny", hidden_size=64, layers=3)
    shape = ModelShape.from_config(read_model_config(folder))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert shape.parameters() == sum(p.numel() for p in model.parameters())
    with quiet_peft_wrap():
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert shape.lora_parameters(4, "all-linear") == trainable


def test_gpt2_style_config_is_sized_within_two_percent():
    from transformers import GPT2Config

    shape = ModelShape.from_config(GPT2Config().to_dict())   # GPT-2 small: 124,439,808 parameters
    assert shape.parameters() == pytest.approx(124_439_808, rel=0.02)
    assert not shape.gated_mlp


def test_a_config_without_sizes_is_refused_by_name():
    with pytest.raises(ValueError, match="hidden_size"):
        ModelShape.from_config({"vocab_size": 10})


def test_activations_grow_with_batch_and_length_and_checkpointing_cuts_them():
    shape = ModelShape(hidden=2048, layers=24, intermediate=5632, vocab=32000, heads=32, kv_heads=4,
                       tied_embeddings=False, gated_mlp=True)
    common = dict(lora_r=8, target_modules="all-linear", dtype="auto", device="cuda")
    small = estimate_training_memory(shape, batch_size=2, max_length=512, gradient_checkpointing=False, **common)
    big = estimate_training_memory(shape, batch_size=4, max_length=512, gradient_checkpointing=False, **common)
    saved = estimate_training_memory(shape, batch_size=4, max_length=512, gradient_checkpointing=True, **common)
    assert big.activations == 2 * small.activations
    assert big.logits == 2 * small.logits
    assert saved.activations < big.activations / 3
    assert small.weights == shape.parameters() * 2          # bfloat16 on a GPU
    cpu = estimate_training_memory(shape, batch_size=2, max_length=512, gradient_checkpointing=False,
                                   lora_r=8, target_modules="all-linear", dtype="auto", device="cpu")
    assert cpu.weights == shape.parameters() * 4            # float32 on the CPU


def test_fit_verdict_warns_when_the_estimate_exceeds_free_memory():
    shape = ModelShape(hidden=4096, layers=32, intermediate=14336, vocab=128256, heads=32, kv_heads=8,
                       tied_embeddings=False, gated_mlp=True)
    config = TrainingConfig(base_model="x", batch_size=8, max_length=2048)
    estimate = estimate_training_memory(shape, batch_size=8, max_length=2048, lora_r=8, target_modules="all-linear",
                                        dtype="bfloat16", device="cuda", gradient_checkpointing=False)
    small_gpu = DeviceMemory("cuda", "RTX 3060", 12 * 2**30, 11 * 2**30)
    verdict = judge_fit(estimate, small_gpu)
    assert not verdict.fits and "RTX 3060" in verdict.message and "batch size" in verdict.message
    huge = DeviceMemory("cuda", "big GPU", 10**15, 10**15)
    assert judge_fit(estimate, huge).fits
    assert config.batch_size == 8


def test_estimate_for_config_and_system_memory(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "tiny")
    config = TrainingConfig(base_model=str(folder), batch_size=2, max_length=64)
    estimate = estimate_for_config(config, read_model_config(folder), "cpu")
    assert estimate.trainable_parameters > 0 and estimate.total > estimate.overhead
    memory = system_memory()
    assert memory.total > 0 and 0 < memory.available <= memory.total
