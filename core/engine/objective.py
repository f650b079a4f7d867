"""One micro-batch through the policy: the training objective and its per-pair metrics.

Shared by the training step and evaluation so both report the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.engine.batching import Batch
from core.engine.pair_packing import PackedBatch
from core.engine.dpo_loss import preference_loss, preference_metrics, sft_loss
from core.engine.logprobs import completion_token_logps, sequence_logps
from core.engine.reference_cache import ReferenceTable, reference_tensors
from core.engine.training_config import TrainingConfig


@dataclass
class BatchResult:
    loss: torch.Tensor                    # scalar: mean preference loss over pairs + sft_weight * NLL
    pair_losses: torch.Tensor             # (B,) detached preference loss (SFT term not included)
    sft: torch.Tensor | None              # scalar detached NLL per chosen token, when sft_weight > 0
    pair_nll: torch.Tensor | None         # (B,) detached NLL per token of each chosen response, when sft_weight > 0
    metrics: dict[str, torch.Tensor]      # name -> (B,) per-pair values (dpo_loss.preference_metrics)
    sft_term: torch.Tensor | None = None  # scalar NLL with its graph (loss = mean pair loss + sft_weight * this)


def batch_objective(model, batch: Batch | PackedBatch, reference: ReferenceTable, config: TrainingConfig,
                    device: torch.device) -> BatchResult:
    """Forward ``batch`` (already on ``device``) through the policy and score it."""
    token_logps = completion_token_logps(model, batch)                 # (2B, W), zero off the completions
    chosen_logps, rejected_logps = sequence_logps(token_logps)          # (B,), (B,)
    ref_chosen, ref_rejected = reference_tensors(reference, batch.example_hashes, device)
    chosen_tokens, rejected_tokens = batch.completion_tokens().chunk(2)
    losses = preference_loss(chosen_logps, rejected_logps, ref_chosen, ref_rejected, beta=config.beta,
                             loss_type=config.loss_type, label_smoothing=config.label_smoothing,
                             chosen_tokens=chosen_tokens, rejected_tokens=rejected_tokens)   # (B,)
    loss = losses.mean()
    nll = pair_nll = None
    if config.sft_weight > 0:
        chosen_token_logps = token_logps[: batch.num_pairs]                   # (B, W)
        nll = sft_loss(chosen_token_logps, batch.loss_mask[: batch.num_pairs])
        loss = loss + config.sft_weight * nll
        pair_nll = (-chosen_token_logps.detach().sum(dim=1) / chosen_tokens.clamp(min=1)).double()
    metrics = preference_metrics(chosen_logps, rejected_logps, ref_chosen, ref_rejected,
                                 chosen_tokens, rejected_tokens, config.beta)
    return BatchResult(loss, losses.detach(), None if nll is None else nll.detach(), pair_nll, metrics, nll)
