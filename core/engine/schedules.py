"""Learning-rate schedules with linear warmup (same formulas as ``transformers.get_scheduler``
for linear / cosine / constant, so loss curves are comparable with TRL's)."""

from __future__ import annotations

import math
from functools import partial

import torch

from core.engine.training_config import TrainingConfig


def warmup_steps(config: TrainingConfig, total_steps: int) -> int:
    return config.warmup_steps if config.warmup_steps > 0 else math.ceil(config.warmup_ratio * total_steps)


def lr_factor(step: int, *, schedule: str, warmup: int, total: int) -> float:
    """Multiplier of the peak learning rate used for optimizer step ``step`` (0-based)."""
    if step < warmup:
        return step / max(1, warmup)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))  # cosine, half a cycle


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    factor = partial(lr_factor, schedule=config.lr_schedule, warmup=warmup_steps(config, total_steps),
                     total=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
