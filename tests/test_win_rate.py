"""The blind A/B win rate and its Wilson interval, checked on examples worked by hand."""

from __future__ import annotations

import math

import pytest

from core.operations.win_rate import Z_95, wilson_interval, win_rate


def test_hand_example_seven_wins_two_losses_one_tie():
    # 7 wins, 2 losses, 1 tie, 3 both-bad; z = 1.96.
    # successes = 7 + 1/2 = 7.5, n = 7 + 2 + 1 = 10 (both-bad left out), p = 0.75.
    # z^2 = 3.8416;  1 + z^2/n = 1.38416
    # centre = (0.75 + 3.8416/20) / 1.38416 = 0.94208 / 1.38416 = 0.680615
    # half   = 1.96 / 1.38416 * sqrt(0.75*0.25/10 + 3.8416/400)
    #        = 1.416021 * sqrt(0.01875 + 0.009604) = 1.416021 * 0.168386 = 0.238438
    # interval = [0.442177, 0.919053]
    result = win_rate(7, 2, 1, 3, z=1.96)
    assert result.rate == 0.75
    assert result.n == 10 and result.judged == 13 and result.both_bad == 3
    assert result.low == pytest.approx(0.442177, abs=2e-6)
    assert result.high == pytest.approx(0.919053, abs=2e-6)


def test_both_bad_does_not_move_the_rate_or_its_interval():
    few, many = win_rate(7, 2, 1, 0, z=1.96), win_rate(7, 2, 1, 50, z=1.96)
    assert (few.rate, few.low, few.high) == (many.rate, many.low, many.high)
    assert many.both_bad == 50 and many.n == 10


def test_all_wins_is_not_certainty():
    # 10 of 10: p = 1, low = n / (n + z^2) = 10 / 13.8416 = 0.722460, high = 1.
    result = win_rate(10, 0, 0, z=1.96)
    assert result.rate == 1.0
    assert result.low == pytest.approx(0.722460, abs=2e-6)
    assert result.high == 1.0


def test_all_losses_mirrors_all_wins():
    wins, losses = win_rate(10, 0, 0), win_rate(0, 10, 0)
    assert losses.rate == 0.0 and losses.low == 0.0
    assert losses.high == pytest.approx(1 - wins.low)


def test_nothing_judged_has_no_rate():
    result = win_rate(0, 0, 0, both_bad=4)
    assert result.rate is None and result.low is None and result.high is None
    assert result.n == 0 and result.judged == 4
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_ties_only_sit_at_one_half_with_a_symmetric_interval():
    # 4 ties: successes 2 of 4, p = 0.5; the interval is symmetric about 0.5.
    result = win_rate(0, 0, 4)
    assert result.rate == 0.5
    assert result.low + result.high == pytest.approx(1.0)
    assert result.low == pytest.approx(wilson_interval(2, 4)[0])


def test_interval_narrows_with_n_and_contains_the_rate():
    previous = 1.0
    for n in (4, 16, 64, 256):
        low, high = wilson_interval(0.75 * n, n)
        assert low < 0.75 < high
        assert high - low < previous
        previous = high - low
    # For large n Wilson meets the normal approximation p +- z sqrt(p(1-p)/n).
    low, high = wilson_interval(7500, 10000)
    assert (high - low) / 2 == pytest.approx(Z_95 * math.sqrt(0.75 * 0.25 / 10000), rel=1e-3)


@pytest.mark.parametrize("args", [(-1, 0, 0, 0), (0, -1, 0, 0), (0, 0, -2, 0), (0, 0, 0, -1)])
def test_negative_counts_are_refused(args):
    with pytest.raises(ValueError):
        win_rate(*args)


def test_impossible_proportions_are_refused():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, z=0)
