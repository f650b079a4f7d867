"""Metric series, smoothing, likelihood-displacement check and progress clock (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from core.operations.metric_series import IncrementalEma, MetricSeries, check_displacement, ema
from core.engine.run_records import create_run
from storage.metrics import MetricWriter
from core.engine.training_config import TrainingConfig
from core.engine.training_control import steps_per_epoch
from core.operations.training_progress import ProgressClock, format_duration


def test_ema_is_debiased_and_zero_smoothing_is_identity():
    values = np.array([1.0, 1.0, 1.0, 5.0])
    assert ema(values, 0.0).tolist() == values.tolist()
    smoothed = ema(values, 0.5)
    assert smoothed[0] == pytest.approx(1.0)        # no pull towards zero at the start
    assert smoothed[2] == pytest.approx(1.0)
    # weights 1/2, 1/4, 1/8, 1/16 from the newest back, normalised by their sum 15/16
    assert smoothed[3] == pytest.approx((0.5 * 5 + 0.25 + 0.125 + 0.0625) / 0.9375)


def test_incremental_ema_equals_full_ema_and_restarts_on_new_smoothing():
    rng = np.random.default_rng(0)
    values = rng.normal(size=200)
    smoother = IncrementalEma()
    for end in (1, 50, 51, 200):
        np.testing.assert_allclose(smoother.update(values[:end], 0.8), ema(values[:end], 0.8))
    np.testing.assert_allclose(smoother.update(values, 0.3), ema(values, 0.3))
    np.testing.assert_allclose(smoother.update(values[:10], 0.3), ema(values[:10], 0.3))  # a shorter series


def _series(chosen, margins, flags=None):
    series = MetricSeries()
    for step, (c, m) in enumerate(zip(chosen, margins), start=1):
        metrics = {"rewards/chosen": c, "rewards/margins": m}
        if flags is not None:
            metrics["likelihood_displacement"] = flags[step - 1]
        series.add(step, "train", metrics)
    return series


def test_displacement_needs_falling_chosen_reward_and_a_growing_margin():
    steps = 10
    growing = list(np.linspace(0.1, 1.0, steps))
    displaced = check_displacement(_series([-0.2] * steps, growing, [1.0] * steps))
    assert displaced is not None and displaced.displaced
    healthy = check_displacement(_series([0.2] * steps, growing, [0.0] * steps))
    assert not healthy.displaced
    shrinking = check_displacement(_series([-0.2] * steps, growing[::-1], [1.0] * steps))
    assert not shrinking.displaced
    assert check_displacement(_series([-0.2] * 3, [0.5] * 3)) is None   # too early to say


def test_series_load_reads_a_runs_stored_metrics(workspace):
    run_dir = workspace.runs_dir / "r1"
    create_run(workspace, "r1", TrainingConfig(base_model="m"), run_dir, total_steps=3)
    writer = MetricWriter(workspace, "r1")
    for step in (1, 2, 3):
        writer.add(step, "train", {"loss": 1.0 / step, "rewards/margins": 0.1 * step})
    writer.add(3, "eval", {"loss": 0.5})
    writer.flush()
    series = MetricSeries.load(workspace, "r1")
    steps, values = series.get("loss")
    assert steps.tolist() == [1, 2, 3] and values[-1] == pytest.approx(1 / 3)
    assert series.get("loss", "eval")[1].tolist() == [0.5]
    assert len(series) == 3 and series.last_step() == 3
    assert MetricSeries.load(workspace, "r1", max_step=2).get("loss")[0].tolist() == [1, 2]


def test_progress_clock_counts_epochs_and_time_left():
    now = [100.0]
    clock = ProgressClock(total_steps=100, start_step=0, steps_in_epoch=25, clock=lambda: now[0])
    for step in range(1, 11):
        now[0] += 0.5
        snapshot = clock.step(step, tokens_per_second=1000.0)
    assert snapshot.epoch == pytest.approx(0.4) and snapshot.total_epochs == pytest.approx(4.0)
    assert snapshot.seconds_left == pytest.approx(45.0)
    assert snapshot.tokens_per_second == pytest.approx(1000.0)
    assert "step 10 / 100" in snapshot.describe() and "45 s left" in snapshot.describe()
    now[0] += 600   # a long pause...
    clock.restart_pace()
    now[0] += 0.5
    assert clock.step(11).seconds_left == pytest.approx(89 * 0.5)   # ...is not counted as slowness
    assert steps_per_epoch(29, 4, 2) == 4
    assert format_duration(3725) == "1 h 02 min"
