"""What to change when a run will not fit: each change found by re-running the memory estimate.

``assess_fit`` gives the estimate and its verdict (``memory_estimate.judge_fit``); when the run does
not fit, the verdict carries every single change that alone makes it fit, each with the value:

- the largest batch size that fits (and the accumulation that keeps the pairs of a step);
- the longest max length (a multiple of 64) that fits; when no batch size alone is enough, the
  longest that fits at batch size 1 too;
- gradient checkpointing, when it is off;
- a 4-bit base (QLoRA), on a CUDA GPU only;
- a reference batch as small as the training batch, when the up-front reference pass is the peak.

When no single change is enough, the smallest run (batch size 1, checkpointing, 4-bit on CUDA) is
tried: either it fits ("all of: …") or the verdict says the model is too big for the device.
Pure arithmetic on ``config.json``: cheap enough to run on every keystroke.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from core.engine.memory_estimate import (DeviceMemory, FitVerdict, MemoryEstimate, StepTokens, estimate_for_config,
                                         format_bytes, judge_fit, usable_bytes)

LENGTH_STEP = 64


def assess_fit(config, model_config: dict[str, Any], memory: DeviceMemory,
               tokens: tuple[StepTokens, StepTokens | None] | None = None) -> tuple[MemoryEstimate, FitVerdict]:
    """The estimate of ``config`` on ``memory``'s device and its verdict, with advice when it does not fit."""
    estimate = estimate_for_config(config, model_config, memory.device, tokens)
    verdict = judge_fit(estimate, memory)
    if verdict.fits:
        return estimate, verdict
    return estimate, judge_fit(estimate, memory, fit_advice(config, model_config, memory, tokens))


def fit_advice(config, model_config: dict[str, Any], memory: DeviceMemory,
               tokens: tuple[StepTokens, StepTokens | None] | None = None) -> list[str]:
    """The changes that each alone make ``config`` fit (see the module docstring)."""
    budget = usable_bytes(memory)

    def need(changed, changed_tokens=tokens) -> int:
        return estimate_for_config(changed, model_config, memory.device, changed_tokens).total

    def fits(**changes) -> bool:
        return need(dataclasses.replace(config, **changes), _scaled(tokens, config, changes)) <= budget

    advice: list[str] = []
    batch = _largest(1, config.batch_size - 1, lambda b: fits(batch_size=b))
    if batch is not None:
        pairs = config.batch_size * config.gradient_accumulation_steps
        accumulation = math.ceil(pairs / batch)
        advice.append(f"lower batch size to {batch} (now {config.batch_size}; with accumulation {accumulation} "
                      f"a step takes {batch * accumulation} pairs, now {pairs})")
    steps = _largest(1, (config.max_length - 1) // LENGTH_STEP, lambda n: fits(max_length=n * LENGTH_STEP))
    if steps is not None:
        advice.append(f"shorten max length to {steps * LENGTH_STEP} (now {config.max_length})")
    if batch is None and config.batch_size > 1:    # the batch alone is not enough: with the length, then
        both = _largest(1, (config.max_length - 1) // LENGTH_STEP,
                        lambda n: fits(batch_size=1, max_length=n * LENGTH_STEP))
        if both is not None and both != steps:
            advice.append(f"lower batch size to 1 and max length to {both * LENGTH_STEP}")
    if not config.gradient_checkpointing and fits(gradient_checkpointing=True):
        advice.append("turn on gradient checkpointing")
    if memory.device == "cuda" and not getattr(config, "load_in_4bit", False) and fits(load_in_4bit=True):
        advice.append("a 4-bit base (QLoRA)")
    if config.reference_batch_size > config.batch_size and fits(reference_batch_size=config.batch_size):
        advice.append(f"reference batch {config.batch_size} (now {config.reference_batch_size})")
    if advice:
        return advice
    smallest = {"batch_size": 1, "gradient_checkpointing": True, "reference_batch_size": 1}
    if memory.device == "cuda":
        smallest["load_in_4bit"] = True
    words = "batch size 1, gradient checkpointing" + (" and a 4-bit base" if memory.device == "cuda" else "")
    if fits(**smallest):
        return [f"all of: {words}"]
    least = need(dataclasses.replace(config, **smallest), _scaled(tokens, config, smallest))
    return [f"a smaller model or more memory: even with {words} it needs about {format_bytes(least)}"]


def _largest(low: int, high: int, ok: Callable[[int], bool]) -> int | None:
    """The largest ``n`` in ``[low, high]`` with ``ok(n)`` (``ok`` true below some bound), or None."""
    if high < low or not ok(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if ok(middle) else (low, middle - 1)
    return low


def _scaled(tokens, config, changes: dict) -> tuple[StepTokens, StepTokens | None] | None:
    """Real token counts under ``changes``: a smaller batch takes its share of the rows; a new
    max length drops them (the worst case of that length is estimated instead)."""
    if tokens is None or "max_length" in changes:
        return None
    step, reference = tokens
    step = _share(step, changes.get("batch_size", config.batch_size) / config.batch_size)
    if reference is not None:
        reference = _share(reference, changes.get("reference_batch_size", config.reference_batch_size)
                           / config.reference_batch_size)
    return step, reference


def _share(tokens: StepTokens, share: float) -> StepTokens:
    if share == 1:
        return tokens
    return StepTokens(max(1, math.ceil(tokens.rows * share)), tokens.width, math.ceil(tokens.head_positions * share),
                      tokens.packed)
