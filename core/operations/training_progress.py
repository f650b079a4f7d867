"""Where a running training run stands: step, epoch, tokens per second and time left.

Fed one call per optimizer step from whoever watches the run; the time left comes from the
pace of the last steps (a pause resets the pace so it is not counted as slowness).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from core.operations.wording import format_duration


@dataclass(frozen=True)
class ProgressSnapshot:
    step: int
    total_steps: int
    epoch: float                  # epochs done, fractional: 0.5 = half-way through the first
    total_epochs: float
    tokens_per_second: float | None
    seconds_left: float | None
    #: ``max_steps`` set the run's length, so ``total_epochs`` follows from it (not the epochs setting).
    length_from_max_steps: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def describe(self) -> str:
        """"step 40 / 120 · epoch 0.7 / 2.0 · 5,120 tokens/s · 2 min 10 s left"."""
        epochs = f"epoch {self.epoch:.1f} / {self.total_epochs:.1f}"
        if self.length_from_max_steps:
            epochs += " (from max steps)"
        parts = [f"step {self.step} / {self.total_steps}", epochs]
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:,.0f} tokens/s")
        if self.seconds_left is not None:
            parts.append(f"{format_duration(self.seconds_left, with_seconds=True)} left")
        return " · ".join(parts)


class ProgressClock:
    def __init__(self, total_steps: int, start_step: int = 0, steps_in_epoch: int = 1, pace_window: int = 20,
                 clock: Callable[[], float] = time.monotonic, length_from_max_steps: bool = False):
        self.total_steps = total_steps
        self.length_from_max_steps = length_from_max_steps
        self.steps_in_epoch = max(1, steps_in_epoch)
        self._clock = clock
        self._marks: deque[tuple[float, int]] = deque(maxlen=pace_window + 1)
        self._step = start_step
        self._tokens_per_second: float | None = None
        self._marks.append((clock(), start_step))

    def step(self, step: int, tokens_per_second: float | None = None) -> ProgressSnapshot:
        self._step = step
        self._marks.append((self._clock(), step))
        if tokens_per_second is not None and math.isfinite(tokens_per_second):
            # Smoothed: single steps vary a lot with their batch's length.
            previous = self._tokens_per_second
            self._tokens_per_second = tokens_per_second if previous is None else 0.8 * previous + 0.2 * tokens_per_second
        return self.snapshot()

    def restart_pace(self) -> None:
        """After a pause: time spent paused is not training time."""
        self._marks.clear()
        self._marks.append((self._clock(), self._step))

    def seconds_per_step(self) -> float | None:
        if len(self._marks) < 2:
            return None
        (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
        return (t1 - t0) / (s1 - s0) if s1 > s0 else None

    def snapshot(self) -> ProgressSnapshot:
        pace = self.seconds_per_step()
        left = None if pace is None else max(0, self.total_steps - self._step) * pace
        return ProgressSnapshot(self._step, self.total_steps, self._step / self.steps_in_epoch,
                                self.total_steps / self.steps_in_epoch, self._tokens_per_second, left,
                                self.length_from_max_steps)
