"""The DPO family of preference losses and the metrics the app plots, as pure functions.

Every function takes per-pair sequence log-probabilities (sums over the completion tokens,
prompt masked) of the policy and of the reference, shape ``(B,)``, and returns per-pair
values ``(B,)`` or a dict of Python floats. No model, no optimizer, no state.

Notation: ``Δ = (logπ(y_w|x) − logπ_ref(y_w|x)) − (logπ(y_l|x) − logπ_ref(y_l|x))``, the
difference of the chosen and rejected log-ratios; the implicit reward of a response is
``r = β·(logπ − logπ_ref)``, so ``β·Δ`` is the reward margin.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


def preference_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                    reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
                    beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                    chosen_tokens: torch.Tensor | None = None,
                    rejected_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair preference loss, shape ``(B,)``.

    - ``sigmoid`` (DPO, Rafailov et al. 2023, Eq. 7): ``−log σ(βΔ)``. With
      ``label_smoothing = ε`` it is conservative DPO (cDPO, Mitchell 2023):
      ``−(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)``, the loss under labels flipped with probability ε.
    - ``robust`` (Chowdhury et al. 2024, Eq. 5): the unbiased estimate under flip rate ε,
      ``(−(1−ε)·log σ(βΔ) + ε·log σ(−βΔ)) / (1−2ε)``.
    - ``hinge`` (SLiC, Zhao et al. 2023): ``max(0, 1 − βΔ)``.
    - ``ipo`` (Azar et al. 2023, Eq. 17): ``(Δ̄ − 1/(2β))²`` where Δ̄ uses log-ratios averaged
      per completion token (as TRL does; needs ``chosen_tokens``/``rejected_tokens``, shape ``(B,)``),
      β playing the role of the paper's τ.
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps      # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    delta = chosen_logratios - rejected_logratios                        # (B,)
    if loss_type == "sigmoid":
        return (-(1.0 - label_smoothing) * F.logsigmoid(beta * delta)
                - label_smoothing * F.logsigmoid(-beta * delta))
    if loss_type == "robust":
        clean = -(1.0 - label_smoothing) * F.logsigmoid(beta * delta)
        flipped = -label_smoothing * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1.0 - 2.0 * label_smoothing)
    if loss_type == "hinge":
        return torch.relu(1.0 - beta * delta)
    if loss_type == "ipo":
        if chosen_tokens is None or rejected_tokens is None:
            raise ValueError("the ipo loss needs the completion token counts (chosen_tokens, rejected_tokens)")
        # Length-normalised so that β means the same for long and short answers.
        mean_delta = (chosen_logratios / chosen_tokens.clamp(min=1)
                      - rejected_logratios / rejected_tokens.clamp(min=1))
        return (mean_delta - 1.0 / (2.0 * beta)) ** 2
    raise ValueError(f"unknown loss_type {loss_type!r}")


def sft_loss(chosen_token_logps: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the chosen responses, averaged over all their tokens in the
    batch (a scalar). ``chosen_token_logps`` and ``chosen_mask`` are ``(B, T)``; the mask is 1
    on completion tokens. Same definition as TRL's ``loss_type="sft"`` term."""
    mask = chosen_mask.to(chosen_token_logps.dtype)
    return -(chosen_token_logps * mask).sum() / mask.sum().clamp(min=1)


def likelihood_displacement(chosen_logratio_mean: float, margin_mean: float) -> bool:
    """The rule behind the ``likelihood_displacement`` flag: the policy's chosen log-prob has
    fallen below the reference's on average over the batch (mean of logπ(y_w) − logπ_ref(y_w)
    < 0) while the pairs are still ranked the right way on average (rewards/margins > 0) —
    DPO is winning by pushing the rejected response down faster than the chosen one."""
    return chosen_logratio_mean < 0.0 and margin_mean > 0.0


def preference_metrics(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                       reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
                       chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor,
                       beta: float) -> dict[str, torch.Tensor]:
    """Per-pair metric values, each ``(B,)`` (detached, float64), named as the app plots them.

    ``rewards/*`` and ``logps/*`` follow TRL (sums over completion tokens); ``prob/*`` are
    per-token probabilities ``exp(logp / n_tokens)`` of policy and reference; ``prob/preference``
    is ``σ(β·Δ)``, the model's implied probability that chosen beats rejected.
    """
    pc, pr = policy_chosen_logps.detach().double(), policy_rejected_logps.detach().double()
    rc, rr = reference_chosen_logps.detach().double(), reference_rejected_logps.detach().double()
    nc, nr = chosen_tokens.double().clamp(min=1), rejected_tokens.double().clamp(min=1)
    chosen_rewards = beta * (pc - rc)
    rejected_rewards = beta * (pr - rr)
    margins = chosen_rewards - rejected_rewards
    return {
        "rewards/chosen": chosen_rewards,
        "rewards/rejected": rejected_rewards,
        "rewards/margins": margins,
        "rewards/accuracies": (chosen_rewards > rejected_rewards).double(),
        "logps/chosen": pc,
        "logps/rejected": pr,
        "logps/ref_chosen": rc,
        "logps/ref_rejected": rr,
        "prob/chosen": torch.exp(pc / nc),
        "prob/rejected": torch.exp(pr / nr),
        "prob/ref_chosen": torch.exp(rc / nc),
        "prob/ref_rejected": torch.exp(rr / nr),
        "prob/preference": torch.sigmoid(margins),
    }


def summarize(per_pair: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means over pairs, plus the ``likelihood_displacement`` flag (0.0 or 1.0)."""
    means = {name: float(values.mean()) for name, values in per_pair.items()}
    chosen_logratio = means["logps/chosen"] - means["logps/ref_chosen"]
    means["likelihood_displacement"] = float(likelihood_displacement(chosen_logratio, means["rewards/margins"]))
    return means
