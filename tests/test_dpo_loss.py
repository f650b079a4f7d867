"""The DPO maths, pinned against hand computations (DESIGN.md's definitions)."""

from __future__ import annotations

import math

import pytest
import torch

from core.engine.dpo_loss import (LN2, likelihood_displacement, preference_loss, preference_metrics, sft_loss,
                           summarize)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def sigma(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_explainer_worked_example() -> None:
    # π(chosen)=0.30, π(rejected)=0.25, ref 0.20 / 0.30, β=0.1 -> loss 0.664 (explainer, section 6)
    loss = preference_loss(t(math.log(0.30)), t(math.log(0.25)), t(math.log(0.20)), t(math.log(0.30)), beta=0.1)
    assert round(float(loss), 3) == 0.664
    metrics = preference_metrics(t(math.log(0.30)), t(math.log(0.25)), t(math.log(0.20)), t(math.log(0.30)),
                                 t(1), t(1), beta=0.1)
    assert round(float(metrics["rewards/chosen"]), 3) == 0.041
    assert round(float(metrics["rewards/rejected"]), 3) == -0.018
    assert round(float(metrics["prob/preference"]), 3) == 0.515


def test_step_zero_is_ln2_with_zero_rewards() -> None:
    logps = t(-12.5, -3.0, -40.0)
    rejected = t(-10.0, -7.5, -2.0)
    loss = preference_loss(logps, rejected, logps.clone(), rejected.clone(), beta=0.1)
    assert torch.allclose(loss, torch.full((3,), LN2, dtype=torch.float64))
    assert LN2 == pytest.approx(0.693147, abs=1e-6)
    means = summarize(preference_metrics(logps, rejected, logps, rejected, t(5, 3, 9), t(4, 4, 2), beta=0.1))
    for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert means[name] == 0.0
    assert means["prob/preference"] == 0.5
    assert means["likelihood_displacement"] == 0.0


# Policy chosen/rejected, reference chosen/rejected, β: Δ = (−5+6) − (−9+8) = 2.
PC, PR, RC, RR, BETA = -5.0, -9.0, -6.0, -8.0, 0.5
DELTA = (PC - RC) - (PR - RR)


@pytest.mark.parametrize("loss_type, smoothing, expected", [
    ("sigmoid", 0.0, -math.log(sigma(BETA * DELTA))),
    ("sigmoid", 0.2, -0.8 * math.log(sigma(BETA * DELTA)) - 0.2 * math.log(sigma(-BETA * DELTA))),
    ("robust", 0.2, (-0.8 * math.log(sigma(BETA * DELTA)) + 0.2 * math.log(sigma(-BETA * DELTA))) / 0.6),
    ("hinge", 0.0, max(0.0, 1.0 - BETA * DELTA)),
])
def test_loss_types_match_hand_computation(loss_type: str, smoothing: float, expected: float) -> None:
    loss = preference_loss(t(PC), t(PR), t(RC), t(RR), beta=BETA, loss_type=loss_type, label_smoothing=smoothing)
    assert float(loss) == pytest.approx(expected, rel=1e-12)


def test_hinge_is_zero_beyond_the_margin() -> None:
    loss = preference_loss(t(0.0), t(-30.0), t(0.0), t(0.0), beta=0.1, loss_type="hinge")
    assert float(loss) == 0.0


def test_ipo_uses_per_token_log_ratios() -> None:
    # chosen ratio 1 over 4 tokens, rejected ratio −1 over 2 tokens: Δ̄ = 0.25 + 0.5 = 0.75
    loss = preference_loss(t(PC), t(PR), t(RC), t(RR), beta=BETA, loss_type="ipo",
                           chosen_tokens=t(4), rejected_tokens=t(2))
    assert float(loss) == pytest.approx((0.75 - 1 / (2 * BETA)) ** 2, rel=1e-12)
    with pytest.raises(ValueError, match="token counts"):
        preference_loss(t(PC), t(PR), t(RC), t(RR), beta=BETA, loss_type="ipo")


def test_unknown_loss_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown loss_type 'kto'"):
        preference_loss(t(0), t(0), t(0), t(0), beta=0.1, loss_type="kto")


def test_loss_gradient_pushes_chosen_up_and_rejected_down() -> None:
    chosen = torch.tensor([-5.0], requires_grad=True)
    rejected = torch.tensor([-5.0], requires_grad=True)
    preference_loss(chosen, rejected, torch.tensor([-5.0]), torch.tensor([-5.0]), beta=0.1).sum().backward()
    # d/dΔ of −log σ(βΔ) at Δ=0 is −β/2
    assert float(chosen.grad) == pytest.approx(-0.05)
    assert float(rejected.grad) == pytest.approx(0.05)


def test_sft_loss_is_mean_nll_over_chosen_tokens() -> None:
    token_logps = t(-1.0, -2.0, 0.0, -4.0, 0.0, 0.0).view(2, 3)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert float(sft_loss(token_logps, mask)) == pytest.approx((1 + 2 + 4) / 3)


def test_metrics_by_hand() -> None:
    m = preference_metrics(t(PC, -2.0), t(PR, -1.0), t(RC, -1.0), t(RR, -1.0), t(5, 2), t(3, 1), beta=BETA)
    assert m["rewards/chosen"].tolist() == pytest.approx([0.5, -0.5])
    assert m["rewards/rejected"].tolist() == pytest.approx([-0.5, 0.0])
    assert m["rewards/margins"].tolist() == pytest.approx([1.0, -0.5])
    assert m["rewards/accuracies"].tolist() == [1.0, 0.0]
    assert m["prob/chosen"].tolist() == pytest.approx([math.exp(-5 / 5), math.exp(-2 / 2)])
    assert m["prob/ref_rejected"].tolist() == pytest.approx([math.exp(-8 / 3), math.exp(-1)])
    assert m["prob/preference"].tolist() == pytest.approx([sigma(1.0), sigma(-0.5)])


def test_likelihood_displacement_rule() -> None:
    # chosen log-prob below reference while the margin grows -> flagged
    assert likelihood_displacement(chosen_logratio_mean=-0.3, margin_mean=0.2)
    assert not likelihood_displacement(chosen_logratio_mean=0.1, margin_mean=0.2)
    assert not likelihood_displacement(chosen_logratio_mean=-0.3, margin_mean=-0.1)
    both_down = summarize(preference_metrics(t(-11.0), t(-20.0), t(-10.0), t(-10.0), t(4), t(4), beta=0.1))
    assert both_down["rewards/margins"] > 0 and both_down["likelihood_displacement"] == 1.0
