"""The win rate of a blind A/B comparison and its confidence interval (the paper's win-rate
table, with people as the judges).

Counting: a win counts 1, a tie counts half a win (the convention of the DPO paper's GPT-4
win rates and of Chatbot-Arena-style tables), a loss 0. *Both bad* is not in the rate at all:
the judge said neither answer is acceptable, which tells nothing about which model is better,
so it is reported beside the rate (``WinRate.both_bad``) and left out of its denominator.

    rate = (wins + ties / 2) / (wins + losses + ties)

The interval is Wilson's score interval on ``successes = wins + ties / 2`` over
``n = wins + losses + ties``. A tie is half a success in the point estimate and in the
interval alike, so the interval is always centred on the rate it qualifies; Wilson's
formula needs only the proportion and ``n``, so a half-integer count is no problem. (Counting
a tie as half a trial instead would shrink ``n`` and overstate the uncertainty of a
comparison full of ties; counting it as a whole trial of "half success" is what the rate does.)

Why Wilson and not a bootstrap: comparisons here are small (20-100 judged pairs), where the
bootstrap's percentile interval is known to be too narrow and is degenerate at 0% or 100%
(every resample of "10 wins of 10" is 100%, so it claims certainty). Wilson's interval is
closed form, stays inside [0, 1], is honest near 0 and 1 (10 of 10 gives [72%, 100%], not
[100%, 100%]), and is deterministic: the same verdicts always show the same interval, which
a bootstrap's random resamples do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054   # two-sided 95%: the normal quantile at 0.975


@dataclass(frozen=True)
class WinRate:
    """Model B's record against model A (B is the tuned model in a base-vs-tuned comparison)."""

    wins: int          # B judged better
    losses: int        # A judged better
    ties: int
    both_bad: int      # neither acceptable: reported, not in the rate
    rate: float | None     # (wins + ties/2) / n; None when n == 0
    low: float | None      # the interval's bounds (None when n == 0)
    high: float | None
    z: float = Z_95

    @property
    def n(self) -> int:
        """Verdicts in the rate's denominator (both-bad ones are not)."""
        return self.wins + self.losses + self.ties

    @property
    def judged(self) -> int:
        """Every verdict counted, both-bad included."""
        return self.n + self.both_bad


def wilson_interval(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``successes / n`` at normal quantile ``z``.

    ``successes`` may be fractional (half-counted ties). ``n == 0``: nothing is known, the
    interval is the whole of [0, 1]. Raises ``ValueError`` for a count outside ``0 <= successes <= n``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if z <= 0:
        raise ValueError(f"z must be positive, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp only rounding: the exact bounds lie in [0, 1] (low is 0 exactly when p == 0).
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int, ties: int, both_bad: int = 0, z: float = Z_95) -> WinRate:
    """B's win rate (ties half) with Wilson's interval; both-bad verdicts reported apart."""
    for name, count in (("wins", wins), ("losses", losses), ("ties", ties), ("both_bad", both_bad)):
        if count < 0:
            raise ValueError(f"{name} must not be negative, got {count}")
    n = wins + losses + ties
    if n == 0:
        return WinRate(wins, losses, ties, both_bad, None, None, None, z)
    successes = wins + ties / 2
    low, high = wilson_interval(successes, n, z)
    return WinRate(wins, losses, ties, both_bad, successes / n, low, high, z)
