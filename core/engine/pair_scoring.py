"""An adapter's implicit-reward margin on pairs: ``β·[(log π(a) − log π_ref(a)) − (log π(b) − log π_ref(b))]``.

The same numbers as the training loop's ``rewards/margins`` (``core.engine.objective``), with
response ``a`` in the chosen rows and ``b`` in the rejected ones, so a positive margin means the
adapter prefers ``a``. The reference is the base model (the adapter disabled), read from the
workspace's reference cache or computed into it (``core.engine.reference_cache``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from core.engine.batching import TokenizedPair, sorted_batches
from core.engine.logprobs import supports_packed_pairs
from core.engine.objective import batch_objective
from core.engine.pair_packing import collate_pairs
from core.engine.reference_cache import ReferenceTable
from core.engine.training_config import TrainingConfig


@torch.no_grad()
def pair_margins(model, pairs: Sequence[TokenizedPair], reference: ReferenceTable, config: TrainingConfig,
                 pad_token_id: int, device: torch.device, batch_size: int | None = None,
                 on_batch: Callable[[dict[int, float], int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> dict[int, float]:
    """pair id -> margin (β times nats) for ``pairs`` tokenised with a as chosen, b as rejected.

    Length-sorted batches of ``batch_size`` (default ``config.reference_batch_size``), no grad.
    ``on_batch(margins, done, total)`` gets each batch's margins as it is scored (to store them
    at once, so stopping keeps them); ``should_stop`` is asked before each batch."""
    margins: dict[int, float] = {}
    if not pairs:
        return margins
    was_training = model.training
    model.eval()
    packed = config.packed_pairs and supports_packed_pairs(model)
    try:
        batches = sorted_batches(pairs, batch_size or config.reference_batch_size)
        for done, indices in enumerate(batches, 1):
            if should_stop is not None and should_stop():
                break
            batch = collate_pairs([pairs[i] for i in indices], pad_token_id, packed).to(device)
            values = batch_objective(model, batch, reference, config, device).metrics["rewards/margins"]  # (B,)
            scored = {pairs[i].pair_id: float(value) for i, value in zip(indices, values.cpu().tolist())}
            margins.update(scored)
            if on_batch is not None:
                on_batch(scored, done, len(batches))
    finally:
        model.train(was_training)
    return margins
