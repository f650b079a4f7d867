"""The held-out metrics at step 0, from the reference log-probs alone.

Before its first step a run's policy *is* its reference: a fresh LoRA adds ``B·A·x`` with
``B = 0`` (so base + adapter = the base, the reference of a first round or of a round that
starts from the base), and a round that continues an earlier adapter is measured against
that adapter as loaded (``core.engine.run_start``). So every policy log-prob equals the cached
reference one, and the step-0 evaluation — a forward pass over every held-out pair, about 10,000
of them at 100,000 pairs, before the first step could start — is known without it: the loss of
a zero margin (ln 2 for DPO), zero rewards, the reference's log-probs and probabilities. The
values are those of ``evaluation.evaluate_pairs`` to float rounding (tests/test_start_evaluation.py).
"""

from __future__ import annotations

from typing import Sequence

import torch

from core.engine.batching import TokenizedPair
from core.engine.dpo_loss import preference_loss, preference_metrics
from core.engine.evaluation import pair_means
from core.engine.reference_cache import ReferenceTable, reference_tensors
from core.engine.training_config import TrainingConfig


def predicted_tokens(ids: Sequence[int], start: int) -> int:
    """Completion tokens with a predictor, as a batch's loss mask counts them (a completion that
    starts at 0, when keep_end cut the whole prompt, has none for its first token)."""
    return len(ids) - max(start, 1)


def metrics_at_start(pairs: Sequence[TokenizedPair], reference: ReferenceTable,
                     config: TrainingConfig) -> dict[str, float]:
    """``evaluate_pairs``' metrics of a policy equal to its reference on ``pairs``, without a forward."""
    if not pairs:
        return {}
    cpu = torch.device("cpu")
    ref_chosen, ref_rejected = reference_tensors(reference, [p.example_hash for p in pairs], cpu)   # (N,), (N,)
    chosen_tokens = torch.tensor([predicted_tokens(p.chosen_ids, p.chosen_start) for p in pairs])
    rejected_tokens = torch.tensor([predicted_tokens(p.rejected_ids, p.rejected_start) for p in pairs])
    losses = preference_loss(ref_chosen, ref_rejected, ref_chosen, ref_rejected, beta=config.beta,
                             loss_type=config.loss_type, label_smoothing=config.label_smoothing,
                             chosen_tokens=chosen_tokens, rejected_tokens=rejected_tokens)   # (N,)
    per_pair = preference_metrics(ref_chosen, ref_rejected, ref_chosen, ref_rejected, chosen_tokens,
                                  rejected_tokens, config.beta)
    pair_nll = None
    if config.sft_weight > 0:   # NLL per chosen token: the reference's log-prob over its tokens
        pair_nll = (-ref_chosen.double() / chosen_tokens.clamp(min=1)).double()
    return pair_means(per_pair, losses.double(), pair_nll, config.sft_weight)
