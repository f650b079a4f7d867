"""Reference log-probs, computed once per (base model, tokenisation, example) and kept in the
workspace's ``reference_logps`` table (``storage.reference_logps``), so a training step is one
policy forward + backward.

Cache key: ``model_key`` (``modeling.model_fingerprint``: base config, weight files, path),
``tokenization_key`` (``modeling.tokenization_fingerprint``: tokenizer, chat template,
max_length, truncation mode) and ``example_hash`` (the prompt/chosen/rejected texts). Any
change to one of them misses the cache instead of reusing a stale value.

A run that continues an earlier round's adapter (``core.engine.run_start``) is measured against
that round's model: its values are computed with the adapter *enabled*, before the first step,
and cached under a ``model_key`` that includes the adapter's weights, never the base's key.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch

from core.engine.batching import TokenizedPair, sorted_batches
from core.engine.logprobs import completion_token_logps, sequence_logps, supports_packed_pairs
from core.engine.pair_packing import collate_pairs
from storage.reference_logps import ReferenceTable, load_reference_logps, store_reference_logps
from storage.workspace import Workspace


@torch.no_grad()
def compute_reference_logps(model, pairs: Sequence[TokenizedPair], pad_token_id: int, batch_size: int,
                            device: torch.device,
                            progress: Callable[[int, int], None] | None = None,
                            should_stop: Callable[[], bool] | None = None,
                            packed_pairs: bool = True, adapter_enabled: bool = False) -> list[dict]:
    """Reference log-probs of ``pairs`` (the adapter disabled, or with ``adapter_enabled`` the
    model as loaded: an earlier round's adapter); one row dict per pair. With
    ``packed_pairs`` (and a model that takes it) each pair is one packed sequence: the values
    are those of the unpacked layout to float rounding, so the cache key does not depend on it."""
    rows: list[dict] = []
    packed = packed_pairs and supports_packed_pairs(model)
    was_training = model.training
    model.eval()
    disabled = (model.disable_adapter() if hasattr(model, "disable_adapter") and not adapter_enabled
                else contextlib.nullcontext())
    try:
        with disabled:
            batches = sorted_batches(pairs, batch_size)
            for done, indices in enumerate(batches, 1):
                if should_stop is not None and should_stop():
                    break
                batch = collate_pairs([pairs[i] for i in indices], pad_token_id, packed).to(device)
                chosen, rejected = sequence_logps(completion_token_logps(model, batch))
                counts = batch.completion_tokens().cpu()
                chosen_counts, rejected_counts = counts.chunk(2)
                for j, index in enumerate(indices):
                    rows.append({"example_hash": pairs[index].example_hash,
                                 "chosen_logp": float(chosen[j]), "rejected_logp": float(rejected[j]),
                                 "chosen_tokens": int(chosen_counts[j]), "rejected_tokens": int(rejected_counts[j])})
                if progress is not None:
                    progress(done, len(batches))
    finally:
        model.train(was_training)
    return rows


def ensure_reference_logps(ws: Workspace, model, pairs: Sequence[TokenizedPair], model_key: str,
                           tokenization_key: str, pad_token_id: int, batch_size: int, device: torch.device,
                           progress: Callable[[int, int], None] | None = None,
                           should_stop: Callable[[], bool] | None = None,
                           packed_pairs: bool = True, adapter_enabled: bool = False,
                           known: ReferenceTable | None = None) -> tuple[ReferenceTable, int]:
    """All pairs' reference log-probs (cache first, the rest computed and stored; ``adapter_enabled``
    as in ``compute_reference_logps``, with a ``model_key`` that names the adapter). ``known``:
    values already read under the same keys (``core.engine.prepared_inputs``); only the rest is read.

    Returns the table and how many examples had to be computed.
    """
    table = dict(known) if known else {}
    table.update(load_reference_logps(ws, model_key, tokenization_key,
                                      [p.example_hash for p in pairs if p.example_hash not in table]))
    seen: set[str] = set()
    missing = []
    for pair in pairs:
        if pair.example_hash not in table and pair.example_hash not in seen:
            seen.add(pair.example_hash)
            missing.append(pair)
    if missing:
        rows = compute_reference_logps(model, missing, pad_token_id, batch_size, device, progress, should_stop,
                                       packed_pairs, adapter_enabled)
        store_reference_logps(ws, model_key, tokenization_key, rows)
        table.update({row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows})
    return table, len(missing)


def reference_tensors(table: ReferenceTable, example_hashes: Sequence[str],
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen (B,), rejected (B,)) float32 reference log-probs of a batch."""
    values = torch.tensor([table[h] for h in example_hashes], dtype=torch.float64)
    return values[:, 0].to(device=device, dtype=torch.float32), values[:, 1].to(device=device, dtype=torch.float32)
