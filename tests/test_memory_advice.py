"""What the form says to change when a run will not fit: each change re-estimated, with its value."""

from __future__ import annotations

import dataclasses
import re

from core.engine.memory_advice import assess_fit, fit_advice
from core.engine.memory_estimate import DeviceMemory, estimate_for_config, usable_bytes
from core.engine.training_config import TrainingConfig

LLAMA_8B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
            "vocab_size": 128256, "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False,
            "hidden_act": "silu"}
RTX_4090 = DeviceMemory("cuda", "RTX 4090", 24 * 2**30, 23 * 2**30)


def fits(config: TrainingConfig, memory: DeviceMemory) -> bool:
    return estimate_for_config(config, LLAMA_8B, memory.device).total <= usable_bytes(memory)


def test_an_8b_model_on_a_24_gb_card_gets_each_change_that_fits_with_its_value() -> None:
    config = TrainingConfig(base_model="x", batch_size=8, gradient_accumulation_steps=2, max_length=1024,
                            reference_batch_size=8, gradient_checkpointing=True)
    estimate, verdict = assess_fit(config, LLAMA_8B, RTX_4090)
    assert not verdict.fits and "RTX 4090" in verdict.shortfall
    assert verdict.advice and verdict.message == f"{verdict.shortfall}: {'; or '.join(verdict.advice)}"
    # bf16 weights are 15 GiB of the 25: a 4-bit base leaves room for this batch
    assert "a 4-bit base (QLoRA)" in verdict.advice and len(verdict.advice) == 3
    assert fits(dataclasses.replace(config, load_in_4bit=True), RTX_4090)
    for line in verdict.advice:
        if line.startswith("lower batch size to ") and " and " not in line:
            batch = int(re.match(r"lower batch size to (\d+)", line).group(1))
            assert fits(dataclasses.replace(config, batch_size=batch), RTX_4090)
            assert not fits(dataclasses.replace(config, batch_size=batch + 1), RTX_4090)   # the largest
            assert f"with accumulation {-(-16 // batch)} a step takes {batch * -(-16 // batch)} pairs, now 16" in line
        if line.startswith("shorten max length to "):
            length = int(re.match(r"shorten max length to (\d+)", line).group(1))
            assert length % 64 == 0 and fits(dataclasses.replace(config, max_length=length), RTX_4090)
            assert not fits(dataclasses.replace(config, max_length=length + 64), RTX_4090)
    assert estimate.total > usable_bytes(RTX_4090)


def test_checkpointing_is_offered_when_it_alone_fits_and_4_bit_never_off_cuda() -> None:
    config = TrainingConfig(base_model="x", batch_size=4, max_length=2048, reference_batch_size=4)
    big_ram = DeviceMemory("cpu", "system RAM", 64 * 2**30, 60 * 2**30)
    advice = fit_advice(config, LLAMA_8B, big_ram)
    assert not fits(config, big_ram)
    assert "turn on gradient checkpointing" in advice
    assert fits(dataclasses.replace(config, gradient_checkpointing=True), big_ram)
    assert not any("4-bit" in line for line in advice)       # QLoRA needs a CUDA GPU


def test_a_device_too_small_for_any_setting_says_so() -> None:
    tiny_gpu = DeviceMemory("cuda", "2 GB card", 2 * 2**30, 2 * 2**30)
    config = TrainingConfig(base_model="x", batch_size=8, max_length=512)
    _, verdict = assess_fit(config, LLAMA_8B, tiny_gpu)
    assert not verdict.fits and len(verdict.advice) == 1
    assert verdict.advice[0].startswith("a smaller model or more memory: even with batch size 1, gradient "
                                        "checkpointing and a 4-bit base it needs about ")


def test_a_run_that_fits_gets_no_advice() -> None:
    huge = DeviceMemory("cuda", "H200", 141 * 2**30, 140 * 2**30)
    _, verdict = assess_fit(TrainingConfig(base_model="x", batch_size=2, max_length=512), LLAMA_8B, huge)
    assert verdict.fits and verdict.advice == () and "H200" in verdict.message
