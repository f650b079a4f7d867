"""Per-token and per-sequence log-probabilities of completions under a causal LM.

The LM head is applied only at the positions that predict a completion token (prompt and
padding positions never reach the vocabulary projection), which on small models is most of
the forward's cost. For large vocabularies the head runs in chunks under activation
checkpointing, so the ``(N, V)`` logits are never all alive at once.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from core.batching import Batch

# Rows of the (N, V) logits computed at once before chunking kicks in (about 256 MiB of fp32).
LOGITS_CHUNK_ELEMENTS = 1 << 26
_LOGIT_TRANSFORM_ATTRS = ("final_logit_softcapping", "logit_scale", "output_multiplier",
                          "lm_head_multiplier", "logits_scaling")


def _causal_lm(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _plain_head(causal_lm) -> bool:
    """True when logits are just ``lm_head(hidden)`` (no soft-capping or scaling the fast path would miss)."""
    config = causal_lm.config.get_text_config() if hasattr(causal_lm.config, "get_text_config") else causal_lm.config
    return all(getattr(config, attr, None) in (None, 1.0) for attr in _LOGIT_TRANSFORM_ATTRS)


def _head_logps(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log softmax(head(hidden))[label] for ``hidden`` (N, H), ``labels`` (N,) -> (N,) float32."""
    logits = head(hidden).float()                                   # (N, V)
    return logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def completion_token_logps(model, batch: Batch) -> torch.Tensor:
    """Log-prob of each next token, zero outside the completion: ``(2B, T-1)`` float32.

    Entry ``[i, t]`` is ``log p(input_ids[i, t+1] | input_ids[i, :t+1])`` where
    ``batch.loss_mask[i, t]`` is 1, else 0.
    """
    causal_lm = _causal_lm(model)
    labels = batch.input_ids[:, 1:]                                 # (2B, T-1)
    mask = batch.loss_mask.bool()                                   # (2B, T-1)
    if not _plain_head(causal_lm):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       use_cache=False).logits[:, :-1].float()     # (2B, T-1, V)
        token_logps = torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return token_logps * mask
    backbone = causal_lm.base_model                                 # e.g. LlamaModel (LoRA layers live inside)
    hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      use_cache=False).last_hidden_state[:, :-1]    # (2B, T-1, H)
    head = causal_lm.get_output_embeddings()
    selected_hidden = hidden[mask]                                  # (N, H)
    selected_labels = labels[mask]                                  # (N,)
    vocab = head.weight.shape[0]
    rows = max(1, LOGITS_CHUNK_ELEMENTS // vocab)
    if selected_hidden.shape[0] <= rows:
        selected = _head_logps(head, selected_hidden, selected_labels)
    else:
        pieces = []
        for begin in range(0, selected_hidden.shape[0], rows):
            h, y = selected_hidden[begin:begin + rows], selected_labels[begin:begin + rows]
            if torch.is_grad_enabled():
                pieces.append(checkpoint(_head_logps, head, h, y, use_reentrant=False))
            else:
                pieces.append(_head_logps(head, h, y))
        selected = torch.cat(pieces)
    return torch.zeros(mask.shape, dtype=selected.dtype, device=selected.device).masked_scatter(mask, selected)


def sequence_logps(token_logps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over completion tokens, split into (chosen (B,), rejected (B,))."""
    totals = token_logps.sum(dim=1)                                 # (2B,)
    chosen, rejected = totals.chunk(2, dim=0)
    return chosen, rejected
