"""A run's metrics as growing series, their smoothing, and the likelihood-displacement check.

The training view appends each step's metrics here (live) or loads them from the workspace
(a past run) and draws from the arrays; nothing in here knows about Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from storage.metrics import read_metrics
from storage.workspace import Workspace

SPLITS = ("train", "eval")


class MetricSeries:
    """(split, metric name) -> steps and values, in the order they arrived."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], list[int]] = {}
        self._values: dict[tuple[str, str], list[float]] = {}

    def add(self, step: int, split: str, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            key = (split, name)
            self._steps.setdefault(key, []).append(int(step))
            self._values.setdefault(key, []).append(float(value))

    def get(self, name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """(steps (N,), values (N,)); empty arrays when the metric has not arrived."""
        key = (split, name)
        return (np.asarray(self._steps.get(key, ()), dtype=float),
                np.asarray(self._values.get(key, ()), dtype=float))

    def last(self, name: str, split: str = "train") -> float | None:
        values = self._values.get((split, name))
        return values[-1] if values else None

    def last_step(self, split: str = "train") -> int:
        steps = [s[-1] for (sp, _), s in self._steps.items() if sp == split and s]
        return max(steps, default=0)

    def names(self, split: str = "train") -> list[str]:
        return sorted(name for sp, name in self._steps if sp == split)

    def __len__(self) -> int:
        """Number of train steps recorded."""
        return len(self._steps.get(("train", "loss"), ()))

    @classmethod
    def load(cls, ws: Workspace, run_id: str, max_step: int | None = None) -> "MetricSeries":
        """Every stored metric of a run (both splits), in step order; only steps up to
        ``max_step`` when given (a resumed run's history up to its checkpoint)."""
        series = cls()
        for split in SPLITS:
            for name, rows in read_metrics(ws, run_id, split).items():
                if max_step is not None:
                    rows = [(step, value) for step, value in rows if step <= max_step]
                key = (split, name)
                series._steps[key] = [step for step, _ in rows]
                series._values[key] = [value for _, value in rows]
        return series


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing slider):
    ``smoothing`` 0 returns the values, 0.9 averages over roughly the last ten. ``values`` (N,)."""
    values = np.asarray(values, dtype=float)
    if smoothing <= 0.0 or values.size == 0:
        return values.copy()
    smoothing = min(float(smoothing), 0.999)
    out = np.empty_like(values)
    last, weight = 0.0, 0.0
    for i, value in enumerate(values):
        if not np.isfinite(value):   # a gap stays a gap and does not poison what follows
            out[i] = value
            continue
        last = smoothing * last + (1.0 - smoothing) * value
        weight = smoothing * weight + (1.0 - smoothing)
        out[i] = last / weight
    return out


@dataclass(frozen=True)
class DisplacementCheck:
    """Is the run showing likelihood displacement now, and the numbers behind the verdict."""

    displaced: bool
    chosen_reward: float      # mean β·(logπ − logπ_ref) of the chosen answers over the window
    margin_start: float
    margin_end: float


def check_displacement(series: MetricSeries, window: int = 10, min_steps: int = 5) -> DisplacementCheck | None:
    """Likelihood displacement: over the last ``window`` train steps the chosen answers' reward is
    negative on average (their log-prob fell below the reference's) while the margin is positive
    and still growing (second half of the window above the first), and the engine's per-step
    ``likelihood_displacement`` flag was up in at least half of them. None with too few steps."""
    _, chosen = series.get("rewards/chosen")
    _, margins = series.get("rewards/margins")
    _, flags = series.get("likelihood_displacement")
    if chosen.size < min_steps or margins.size < min_steps:
        return None
    chosen, margins = chosen[-window:], margins[-window:]
    half = max(1, margins.size // 2)
    margin_start, margin_end = float(margins[:half].mean()), float(margins[half:].mean())
    flagged = float(flags[-window:].mean()) if flags.size else 1.0
    displaced = (float(chosen.mean()) < 0.0 and margin_end > 0.0 and margin_end > margin_start
                 and flagged >= 0.5)
    return DisplacementCheck(displaced, float(chosen.mean()), margin_start, margin_end)


class IncrementalEma:
    """``ema`` of a series that only grows, computed for the new points only (the live plots
    redraw several times a second; re-smoothing thousands of points each time would stall the UI).
    A changed smoothing or a series that shrank or was replaced starts over."""

    def __init__(self) -> None:
        self._smoothing: float | None = None
        self._out: list[float] = []
        self._last = 0.0
        self._weight = 0.0
        self._first: float | None = None

    def update(self, values: np.ndarray, smoothing: float) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        restart = (smoothing != self._smoothing or values.size < len(self._out)
                   or (values.size and self._first is not None and values[0] != self._first))
        if restart:
            self._smoothing, self._out, self._last, self._weight = smoothing, [], 0.0, 0.0
        self._first = float(values[0]) if values.size else None
        if smoothing <= 0.0:
            self._out = values.tolist()
            return values.copy()
        a = min(float(smoothing), 0.999)
        for value in values[len(self._out):]:
            if not np.isfinite(value):
                self._out.append(float(value))
                continue
            self._last = a * self._last + (1.0 - a) * value
            self._weight = a * self._weight + (1.0 - a)
            self._out.append(self._last / self._weight)
        return np.asarray(self._out, dtype=float)
